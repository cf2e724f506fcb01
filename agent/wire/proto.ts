import * as fs from "node:fs";
import * as path from "node:path";
import type * as protobuf from "protobufjs";

/**
 * The .proto files in proto/ are the wire contract and its single source of truth: they are
 * loaded at start-up with protobufjs reflection (which compiles fast encoders and decoders), so
 * there is no generated code that could drift from them.
 */
export const PROTO_PACKAGE = "tfgrid.capacity.v1";

function findProtoDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, "proto");
    if (fs.existsSync(path.join(candidate, "tfgrid", "capacity", "v1"))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the proto/ directory above ${__dirname}`);
}

export const PROTO_DIR = findProtoDir();

let root: protobuf.Root | null = null;

export function protoRoot(): protobuf.Root {
  if (root) return root;
  // protobufjs loads with the first message encoded or decoded, not with the module graph
  const { Root } = require("protobufjs") as typeof import("protobufjs");
  const r = new Root();
  r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  const dir = path.join(PROTO_DIR, "tfgrid", "capacity", "v1");
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".proto"))
    .sort()
    .map((f) => `tfgrid/capacity/v1/${f}`);
  r.loadSync(files);
  r.resolveAll();
  root = r;
  return r;
}

const types = new Map<string, protobuf.Type>();

export function protoType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    t = protoRoot().lookupType(`${PROTO_PACKAGE}.${name}`);
    types.set(name, t);
  }
  return t;
}
