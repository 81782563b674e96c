/**
 * nix-seal's library API. Open a store, compute a sealed closure, explain a path:
 *
 *   import { analyze, closureResult, whyResult } from 'nix-seal';
 *   const a = analyze({ roots: ['./result'], seals: ['*.iso'] });
 *   console.log(closureResult(a).totals);
 *   console.log(whyResult(a, '/nix/store/…-bash-5.2').chain);
 *   a.source.close?.(); // the database handle, an image's temporary files
 */
export { analyze, analyzeStore, prepareAnalysis, resolveInAnalysis, type Analysis, type AnalysisOptions } from './analysis.js';
export { ERROR_EXIT_CODE, NixSealError, type ErrorCode, type ErrorJson, type Warning, type WarningCode } from './errors.js';
export { closureLines, closureResult, type ClosureResult } from './commands/closure.js';
export { infoResult, type InfoResult, type Amount } from './commands/info.js';
export { whyResult, addPrecision, type WhyResult } from './commands/why.js';
export { auditAnalysis, auditSeals, isProven, VERDICTS, type AuditInput, type AuditResult, type AuditOptions, type SealAudit, type ErasedAudit, type Verdict } from './seal/audit.js';
export { suggestResult, type GivenSealFlags, type SuggestResult, type Suggestion } from './commands/suggest.js';
export { edgeEvidence, type EdgeEvidence } from './seal/edge-evidence.js';
export { StorePathInspector, type Evidence } from './seal/inspect.js';
export { openImageView, embeddedStorePaths, locateDeep, type ImageView, type InnerEntry } from './seal/image-view.js';
export { prepareDecoders } from './formats/decompress.js';
export { detectImages, type DetectedImage } from './seal/detect.js';
export { sniffFile, sniffSource, sniffStorePath, type Detection, type ImageFormat, type PathSniff, type SniffedFile, type SniffSource } from './seal/sniff.js';
export { main } from './cli/main.js';
export { reach, sealedClosure, topoOrder, maskCount, maskNarSize, type PathMask, type SealedClosure, type SealErasure } from './graph/closure.js';
export { asPathId, buildRefGraph, idOf, referencesOf, type RefGraph, type PathId, type GraphRecords } from './graph/ref-graph.js';
export { shortestChain, allChains } from './graph/why.js';
export { compileSealRules, markSeals, readSealsFile, type SealRule, type SealPattern } from './seal/seal-rules.js';
export { openSource, loadSourceModules } from './sources/open-source.js';
export type { GraphSource } from './sources/source.js';
export { LocalDbSource } from './sources/local-db.js';
export { DaemonSource } from './sources/daemon.js';
export { FileSource, type FileSourceKind } from './sources/file-source.js';
export { ImageSource } from './sources/image-source.js';
export { embeddedStorePaths as storeInImage, copyTree, type Embedding, type ImageRegistration } from './sources/embedded-store.js';
export { withHashesFromDisk, withSizesFromDisk } from './sources/hashes-from-disk.js';
export { parseDrvName, sbomInput, cycloneDx, spdx, renderSbom, SBOM_FORMATS, type SbomFormat, type SbomInput } from './emit/sbom.js';
export { narOfTree, narHashOfTree, narStream, narHashAndSize, type NarTree, type TreeNode } from './formats/nar.js';
export { IMAGE_READERS, readerFor } from './formats/image-readers.js';
export type { ImageReader, InnerOwner } from './formats/image.js';
export { parseRegistration } from './sources/registration.js';
export { parseAttrsJson, parsePathInfoJson } from './sources/json-sources.js';
export { encodeNix32, decodeNix32, nix32Length, NIX32_ALPHABET } from './store/nix32.js';
export { parseHash, formatHashHex, formatHashNix32, formatHashSri, type Hash, type HashAlgo } from './store/hash.js';
export { parseStorePath, toStorePath, hashPartOf, nameOf, baseNameOf, type StorePath } from './store/store-path.js';
export { resolveToStorePath } from './store/resolve-path.js';
export { parseStoreSpec, type StoreSpec } from './store/store-url.js';

// openSource loads the image and binary-cache sources lazily (CLI start-up); the library has them
// imported already, so its synchronous openSource and analyze open every kind of store.
import * as binaryCache from './sources/binary-cache.js';
import * as imageSource from './sources/image-source.js';
import { useSourceModules } from './sources/open-source.js';
useSourceModules({ image: imageSource, binaryCache });
import * as imageDetection from './seal/detect.js';
import { useImageDetection } from './analysis.js';
useImageDetection(imageDetection);
