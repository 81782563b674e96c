import type { Analysis } from '../analysis.js';

/** The sealed registration text for `initrd --registration` (closure-info's format). */
export async function registrationFor(a: Analysis): Promise<string> {
  const { registrationText } = await import('../emit/closure-info.js');
  return registrationText(a);
}
