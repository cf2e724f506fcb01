import { blake2AsU8a } from "@polkadot/util-crypto";
import { inclusionPath, leafHash, merkleLevels, merkleRoot, pathFromLevels, rootOfLevels, verifyInclusion, type MerkleStep } from "../../agent/proofs/merkle";
import { ZERO_HASH } from "../../agent/proofs/proof";

// ---- an independent reference: RFC 6962-style recursion (split at the largest power of two below n),
// which gives the same tree as pairing level by level and promoting an odd last node.
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const refLeaf = (record: Uint8Array): Uint8Array => blake2AsU8a(concat(Uint8Array.of(0x00), record), 256);
const refNode = (l: Uint8Array, r: Uint8Array): Uint8Array => blake2AsU8a(concat(Uint8Array.of(0x01), l, r), 256);
function refRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return new Uint8Array(32);
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return refNode(refRoot(leaves.slice(0, k)), refRoot(leaves.slice(k)));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
/** n distinct records of different lengths */
const records = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => Uint8Array.from(Buffer.from(`record-${i}-${"x".repeat(i % 7)}`)));
const leavesOf = (rs: Uint8Array[]): Uint8Array[] => rs.map(leafHash);
const flip = (b: Uint8Array, i = 0): Uint8Array => {
  const c = b.slice();
  c[i] ^= 0x01;
  return c;
};

describe("leafHash and the known-answer vector", () => {
  test("leafHash is blake2b-256 of 0x00 || record", () => {
    const r = Uint8Array.of(1, 2, 3);
    expect(hex(leafHash(r))).toBe(hex(blake2AsU8a(Uint8Array.of(0, 1, 2, 3), 256)));
  });

  test("two leaves: root = blake2b-256(0x01 || leaf0 || leaf1), computed independently", () => {
    const r0 = Uint8Array.of(0x0a, 0x0b);
    const r1 = Uint8Array.of(0x0c);
    const l0 = blake2AsU8a(Uint8Array.of(0x00, 0x0a, 0x0b), 256);
    const l1 = blake2AsU8a(Uint8Array.of(0x00, 0x0c), 256);
    const root = blake2AsU8a(concat(Uint8Array.of(0x01), l0, l1), 256);
    expect(hex(merkleRoot([leafHash(r0), leafHash(r1)]))).toBe(hex(root));
    // pinned, so a change of hash library or of the tree rules is noticed
    expect(hex(root)).toBe(KNOWN_ROOT_2);
    expect(inclusionPath([l0, l1], 0)).toEqual([{ hash: l1, left: false }]);
    expect(inclusionPath([l0, l1], 1)).toEqual([{ hash: l0, left: true }]);
  });
});

// also checked with Python: hashlib.blake2b(b"\x01" + l0 + l1, digest_size=32)
const KNOWN_ROOT_2 = "00701496ff71f1d7ee73ce9c2ee4e802a941890a6f852f12b26a40db7a1851b2";

describe("merkleRoot", () => {
  test("no leaves: 32 zero bytes", () => {
    expect(merkleRoot([])).toEqual(ZERO_HASH);
    expect(rootOfLevels(merkleLevels([]))).toEqual(ZERO_HASH);
  });

  test("one leaf: the leaf hash itself", () => {
    const l = leafHash(Uint8Array.of(9));
    expect(hex(merkleRoot([l]))).toBe(hex(l));
    expect(inclusionPath([l], 0)).toEqual([]);
  });

  // [leaves, root built by hand from leaf hashes l[i]]
  test.each<[number, (l: Uint8Array[]) => Uint8Array]>([
    [2, (l) => refNode(l[0], l[1])],
    [3, (l) => refNode(refNode(l[0], l[1]), l[2])],
    [5, (l) => refNode(refNode(refNode(l[0], l[1]), refNode(l[2], l[3])), l[4])],
  ])("%i leaves: the odd node is promoted, not duplicated", (n, shape) => {
    const rs = records(n);
    expect(hex(merkleRoot(leavesOf(rs)))).toBe(hex(shape(rs.map(refLeaf))));
  });

  test.each([0, 1, 2, 3, 5, 8, 13, 100])("%i leaves: same root as the reference, levels agree", (n) => {
    const rs = records(n);
    const leaves = leavesOf(rs);
    const want = hex(refRoot(rs.map(refLeaf)));
    expect(hex(merkleRoot(leaves))).toBe(want);
    expect(hex(rootOfLevels(merkleLevels(leaves)))).toBe(want);
  });

  test("a duplicated last leaf gives another root (no CVE-2012-2459 ambiguity)", () => {
    const l = leavesOf(records(3));
    expect(hex(merkleRoot([...l, l[2]]))).not.toBe(hex(merkleRoot(l)));
  });

  test("an inner node cannot pass for a leaf (domain separation)", () => {
    const l = leavesOf(records(4));
    const inner = refNode(l[0], l[1]);
    // the two-leaf tree over (inner of 0,1) and (inner of 2,3) has the 4-leaf root; a record whose
    // bytes are 0x01||l0||l1 hashes as a LEAF with the 0x00 prefix, so it is not that inner node
    expect(hex(leafHash(concat(l[0], l[1])))).not.toBe(hex(inner));
    expect(verifyInclusion(concat(l[0], l[1]), [{ hash: refNode(l[2], l[3]), left: false }], merkleRoot(l))).toBe(false);
  });

  test.each([
    ["a record instead of a hash", [Uint8Array.of(1, 2, 3)]],
    ["a 33-byte leaf", [new Uint8Array(33)]],
  ])("leaves must be 32-byte hashes: %s throws", (_what, leaves) => {
    expect(() => merkleRoot(leaves)).toThrow(/32-byte hash/);
    expect(() => inclusionPath(leaves, 0)).toThrow(/32-byte hash/);
  });

  test("10,000 leaves: root and a path from one build", () => {
    const rs = records(10_000);
    const leaves = leavesOf(rs);
    const levels = merkleLevels(leaves);
    const root = rootOfLevels(levels);
    expect(hex(root)).toBe(hex(merkleRoot(leaves)));
    for (const i of [0, 4_999, 9_999]) expect(verifyInclusion(rs[i], pathFromLevels(levels, i), root)).toBe(true);
    expect(pathFromLevels(levels, 9_999).length).toBeLessThanOrEqual(14);
  });
});

describe("inclusion paths", () => {
  const SIZES = [1, 2, 3, 5, 8, 13];
  const cases = SIZES.flatMap((n) => Array.from({ length: n }, (_, i) => [n, i] as const));

  test.each(cases)("%i leaves, index %i: the record verifies against the root", (n, i) => {
    const rs = records(n);
    const leaves = leavesOf(rs);
    const path = inclusionPath(leaves, i);
    expect(verifyInclusion(rs[i], path, merkleRoot(leaves))).toBe(true);
    expect(path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
  });

  test.each([
    // [leaves, index, steps]: promoted levels add no step
    [5, 4, 1],
    [5, 0, 3],
    [3, 2, 1],
    [13, 12, 2],
    [8, 7, 3],
  ])("%i leaves, index %i: the path has %i steps", (n, i, steps) => {
    expect(inclusionPath(leavesOf(records(n)), i)).toHaveLength(steps);
  });

  type Tamper = (x: { rs: Uint8Array[]; i: number; path: MerkleStep[]; root: Uint8Array; n: number }) => [Uint8Array, MerkleStep[], Uint8Array] | null;
  const tampers: Array<[string, Tamper]> = [
    ["a tampered record", ({ rs, i, path, root }) => [flip(rs[i], rs[i].length - 1), path, root]],
    ["the path of another index", ({ rs, i, root, n }) => (n < 2 ? null : [rs[i], inclusionPath(leavesOf(rs), (i + 1) % n), root])],
    ["a wrong root", ({ rs, i, path, root }) => [rs[i], path, flip(root, 31)]],
    ["a swapped left flag", ({ rs, i, path, root }) => (path.length === 0 ? null : [rs[i], path.map((s, k) => (k === 0 ? { hash: s.hash, left: !s.left } : s)), root])],
    ["a tampered sibling", ({ rs, i, path, root }) => (path.length === 0 ? null : [rs[i], path.map((s, k) => (k === path.length - 1 ? { hash: flip(s.hash, 5), left: s.left } : s)), root])],
    ["a missing step", ({ rs, i, path, root }) => (path.length === 0 ? null : [rs[i], path.slice(0, -1), root])],
    ["an extra step", ({ rs, i, path, root }) => [rs[i], [...path, { hash: new Uint8Array(32), left: false }], root]],
    ["a short sibling hash", ({ rs, i, path, root }) => (path.length === 0 ? null : [rs[i], [{ hash: path[0].hash.slice(1), left: path[0].left }, ...path.slice(1)], root])],
    ["a short root", ({ rs, i, path, root }) => [rs[i], path, root.slice(0, 31)]],
  ];
  const tamperCases = tampers.flatMap(([what, t]) => cases.map(([n, i]) => [what, n, i, t] as const));

  test.each(tamperCases)("%s fails (%i leaves, index %i)", (_what, n, i, tamper) => {
    const rs = records(n);
    const leaves = leavesOf(rs);
    const t = tamper({ rs, i, path: inclusionPath(leaves, i), root: merkleRoot(leaves), n });
    if (t === null) return; // not applicable to this shape (e.g. one leaf has no steps)
    expect(verifyInclusion(...t)).toBe(false);
  });

  test("a path longer than 64 steps is refused, not folded", () => {
    const r = Uint8Array.of(1);
    expect(verifyInclusion(r, Array.from({ length: 65 }, () => ({ hash: new Uint8Array(32), left: false })), new Uint8Array(32))).toBe(false);
  });

  test("a Buffer (as protobufjs decodes bytes) works like a Uint8Array", () => {
    const rs = records(5);
    const leaves = leavesOf(rs);
    const path = inclusionPath(leaves, 3).map((s) => ({ hash: Buffer.from(s.hash), left: s.left }));
    expect(verifyInclusion(Buffer.from(rs[3]), path, Buffer.from(merkleRoot(leaves)))).toBe(true);
  });

  test.each([-1, 5, 1.5, Number.NaN])("index %p of 5 leaves throws a RangeError", (i) => {
    expect(() => inclusionPath(leavesOf(records(5)), i)).toThrow(RangeError);
  });
});
