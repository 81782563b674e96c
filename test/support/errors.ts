/** Assertions on NixSealError (src/errors.ts): the code and the one-line message. */
import assert from 'node:assert/strict';
import { NixSealError } from '../../src/errors.js';

/** `p` rejects with a NixSealError of `code` whose message matches `re`. */
export async function assertNixSealError(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NixSealError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return true;
  });
}
