import { blake2b256 } from "./proof";

/**
 * The binary Merkle tree of a period's usage records (DESIGN.md, "Usage proofs"; usage.proto).
 * Pure functions, no I/O.
 *
 *   leaf  = blake2b-256(0x00 || encoded UsageRecord)
 *   inner = blake2b-256(0x01 || left || right)
 *
 * The one-byte prefixes separate leaves from inner nodes, so no inner node can be passed off as a
 * record (second-preimage attack). An odd node at the end of a level is promoted unchanged to the
 * next level; it is never paired with a copy of itself, so two different leaf lists never share a
 * root (the duplicate-leaf ambiguity of CVE-2012-2459). Root of no leaves: 32 zero bytes (ZERO_HASH);
 * root of one leaf: its leaf hash.
 */

export const HASH_BYTES = 32;
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** The longest path a tree can have: 2^64 leaves is far beyond any period. */
export const MAX_PATH_STEPS = 64;

/** One step of an inclusion path (usage.proto MerkleStep): the sibling, and whether it is on the left. */
export interface MerkleStep {
  hash: Uint8Array;
  left: boolean;
}

/** blake2b-256(0x00 || recordBytes): the leaf of one encoded UsageRecord. */
export function leafHash(recordBytes: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + recordBytes.length);
  buf[0] = LEAF_PREFIX;
  buf.set(recordBytes, 1);
  return blake2b256(buf);
}

/** blake2b-256(0x01 || left || right): an inner node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + 2 * HASH_BYTES);
  buf[0] = NODE_PREFIX;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_BYTES);
  return blake2b256(buf);
}

/** A byte array, also one from another realm (a Buffer inside jest's VM context fails `instanceof Uint8Array`). */
function isBytes(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array || (ArrayBuffer.isView(x) && (x as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT === 1 && !(x instanceof DataView));
}

function checkLeaves(leaves: readonly Uint8Array[]): void {
  for (let i = 0; i < leaves.length; i++) {
    const l = leaves[i];
    if (!isBytes(l) || l.length !== HASH_BYTES) {
      throw new Error(`merkle: leaf ${i} must be a ${HASH_BYTES}-byte hash (pass leafHash(record), not the record)`);
    }
  }
}

/** The next level up: pairs hashed, an odd last node promoted unchanged. */
function nextLevel(level: readonly Uint8Array[]): Uint8Array[] {
  const up: Uint8Array[] = new Array<Uint8Array>(Math.ceil(level.length / 2));
  let j = 0;
  for (let i = 0; i + 1 < level.length; i += 2) up[j++] = nodeHash(level[i], level[i + 1]);
  if (level.length % 2 === 1) up[j] = level[level.length - 1];
  return up;
}

/**
 * Every level of the tree, leaves first, root last (`levels[levels.length - 1]` holds the single
 * root). No leaves: `[[]]`. Build once and take the root and many paths from it (`pathFromLevels`).
 */
export function merkleLevels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  checkLeaves(leaves);
  const levels: Uint8Array[][] = [leaves.slice()];
  while (levels[levels.length - 1].length > 1) levels.push(nextLevel(levels[levels.length - 1]));
  return levels;
}

/** The root of leaf hashes; ZERO_HASH (a fresh copy) for none, the leaf itself for one. */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  checkLeaves(leaves);
  if (leaves.length === 0) return new Uint8Array(HASH_BYTES);
  let level: readonly Uint8Array[] = leaves;
  while (level.length > 1) level = nextLevel(level);
  return level[0];
}

/** The root of already built levels (see merkleLevels). */
export function rootOfLevels(levels: readonly Uint8Array[][]): Uint8Array {
  const top = levels[levels.length - 1];
  return top.length === 0 ? new Uint8Array(HASH_BYTES) : top[0];
}

/** The inclusion path of leaf `index` from already built levels (see merkleLevels). */
export function pathFromLevels(levels: readonly Uint8Array[][], index: number): MerkleStep[] {
  const n = levels[0].length;
  if (!Number.isSafeInteger(index) || index < 0 || index >= n) throw new RangeError(`merkle: leaf index ${index} is out of range [0, ${n})`);
  const path: MerkleStep[] = [];
  let i = index;
  for (let d = 0; d < levels.length - 1; d++) {
    const level = levels[d];
    const sibling = i ^ 1;
    // the last node of an odd level has no sibling: it is promoted and adds no step
    if (sibling < level.length) path.push({ hash: level[sibling], left: sibling < i });
    i >>= 1;
  }
  return path;
}

/**
 * The path from leaf `index` up to the root: each step is the sibling hash and whether it is on
 * the left. Levels where the node is promoted add no step. Throws a RangeError for a bad index.
 */
export function inclusionPath(leaves: readonly Uint8Array[], index: number): MerkleStep[] {
  return pathFromLevels(merkleLevels(leaves), index);
}

/** Fold a path from a leaf hash; undefined when a step is malformed (not a 32-byte hash) or the path is too long. */
export function rootFromPath(leaf: Uint8Array, path: readonly MerkleStep[]): Uint8Array | undefined {
  if (!Array.isArray(path) || path.length > MAX_PATH_STEPS) return undefined;
  let h = leaf;
  for (const step of path) {
    if (!step || !isBytes(step.hash) || step.hash.length !== HASH_BYTES) return undefined;
    h = step.left === true ? nodeHash(step.hash, h) : nodeHash(h, step.hash);
  }
  return h;
}

/**
 * True when the encoded record, hashed as a leaf and folded with the path, gives `root`. Inputs
 * may be untrusted: a malformed path or root is false, never an exception.
 */
export function verifyInclusion(recordBytes: Uint8Array, path: readonly MerkleStep[], root: Uint8Array): boolean {
  if (!isBytes(recordBytes) || !isBytes(root) || root.length !== HASH_BYTES) return false;
  const got = rootFromPath(leafHash(recordBytes), path);
  return got !== undefined && hashesEqual(got, root);
}

export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
