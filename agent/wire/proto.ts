import * as fs from "node:fs";
import * as path from "node:path";
import type * as protobuf from "protobufjs";

/**
 * The .proto files in proto/ are the wire contract and its single source of truth: they are
 * loaded at start-up with protobufjs reflection (which compiles fast encoders and decoders), so
 * there is no generated code that could drift from them. Their TypeScript types are generated
 * (agent/wire/generated.ts, by scripts/gen-proto-types; a unit test keeps them current).
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

const PROTO_SUBDIR = path.join("tfgrid", "capacity", "v1");

function protoFiles(): string[] {
  return fs
    .readdirSync(path.join(PROTO_DIR, PROTO_SUBDIR))
    .filter((f) => f.endsWith(".proto"))
    .sort()
    .map((f) => `tfgrid/capacity/v1/${f}`);
}

let root: protobuf.Root | null = null;
const loaded = new Set<string>();

function emptyRoot(): protobuf.Root {
  // protobufjs loads with the first message encoded or decoded, not with the module graph
  const { Root } = require("protobufjs") as typeof import("protobufjs");
  const r = new Root();
  r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  return r;
}

/** Parse `files` (and what they import) into the one root, once each. */
function load(files: string[]): protobuf.Root {
  root ??= emptyRoot();
  const fresh = files.filter((f) => !loaded.has(f));
  if (fresh.length) {
    root.loadSync(fresh);
    root.resolveAll();
    for (const f of fresh) loaded.add(f);
  }
  return root;
}

/** Every .proto file parsed (tools that walk all types). */
export function protoRoot(): protobuf.Root {
  return load(protoFiles());
}

let fileOfType: Map<string, string> | null = null;
/**
 * The file that declares a top-level message or enum, from a scan of the sources (cheap), so a
 * command parses only the files it uses: a CLI `status` needs node.proto, not all five.
 */
function fileDeclaring(name: string): string | undefined {
  if (!fileOfType) {
    fileOfType = new Map();
    for (const f of protoFiles()) {
      const text = fs.readFileSync(path.join(PROTO_DIR, f), "utf8");
      for (const m of text.matchAll(/^(?:message|enum)\s+(\w+)/gm)) fileOfType.set(m[1], f);
    }
  }
  return fileOfType.get(name);
}

const types = new Map<string, protobuf.Type>();

export function protoType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    const file = fileDeclaring(name);
    t = (file ? load([file]) : protoRoot()).lookupType(`${PROTO_PACKAGE}.${name}`);
    types.set(name, t);
  }
  return t;
}
