/** Copies inside images as NAR trees: moved to sources/embedded-store.ts, re-exported. */
export { copyBytes, copyTree } from '../sources/embedded-store.js';
