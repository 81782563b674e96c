import type { Analysis } from '../analysis.js';

/**
 * The sealed registration text for `initrd --registration` (closure-info's format); narHash and
 * narSize the source lacks are computed from disk first.
 */
export async function registrationFor(a: Analysis): Promise<string> {
  const { registrationText } = await import('../emit/closure-info.js');
  const { withHashesFromDisk } = await import('../sources/hashes-from-disk.js');
  const { graph } = await withHashesFromDisk(a.graph, a.source, a.closure.kept);
  return registrationText(graph, a.closure.kept);
}
