import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as protobuf from "protobufjs";
import { decode, encode, type MessageName } from "../../agent/wire/codec";
import type { WireChainReply, WireMessages } from "../../agent/wire/generated";
import { PROTO_PACKAGE, protoRoot } from "../../agent/wire/proto";

const ROOT = path.resolve(__dirname, "../..");
const SCRIPT = path.join(ROOT, "scripts", "gen-proto-types");
const GENERATED = path.join(ROOT, "agent", "wire", "generated.ts");

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("agent/wire/generated.ts: the TypeScript types of proto/", () => {
  test("is what scripts/gen-proto-types makes of the .proto files now (regenerated and compared)", () => {
    const printed = run([]);
    expect(printed.status).toBe(0);
    expect(printed.stdout).toBe(fs.readFileSync(GENERATED, "utf8"));
    const checked = run(["--check"]);
    expect(checked.stderr).toBe("");
    expect(checked.status).toBe(0);
  });

  test("--check fails on a stale file, and a bad flag is a usage error", () => {
    const tmp = fs.mkdtempSync(path.join(ROOT, ".gen-proto-types-test-"));
    try {
      // a copy of the script in a tree whose generated.ts is stale
      fs.mkdirSync(path.join(tmp, "scripts"));
      fs.mkdirSync(path.join(tmp, "agent", "wire"), { recursive: true });
      fs.copyFileSync(SCRIPT, path.join(tmp, "scripts", "gen-proto-types"));
      fs.cpSync(path.join(ROOT, "proto"), path.join(tmp, "proto"), { recursive: true });
      fs.writeFileSync(path.join(tmp, "agent", "wire", "generated.ts"), fs.readFileSync(GENERATED, "utf8").replace("export interface WireUnits {", "export interface WireUnitz {"));
      const r = spawnSync(process.execPath, [path.join(tmp, "scripts", "gen-proto-types"), "--check"], { cwd: tmp, encoding: "utf8" });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/agent\/wire\/generated\.ts is not current; run scripts\/gen-proto-types --write/);
      expect(spawnSync(process.execPath, [path.join(tmp, "scripts", "gen-proto-types"), "--write"], { cwd: tmp }).status).toBe(0);
      expect(fs.readFileSync(path.join(tmp, "agent", "wire", "generated.ts"), "utf8")).toBe(fs.readFileSync(GENERATED, "utf8"));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    expect(run(["--bogus"]).status).toBe(2);
  });

  test("names every message of the package, and decode returns the shapes the types claim", () => {
    const pb = require("protobufjs") as typeof protobuf;
    const messages: protobuf.Type[] = [];
    const visit = (ns: protobuf.NamespaceBase): void => {
      for (const o of ns.nestedArray) {
        if (o instanceof pb.Type) messages.push(o);
        if (o instanceof pb.Namespace || o instanceof pb.Type) visit(o);
      }
    };
    visit(protoRoot().lookup(PROTO_PACKAGE) as protobuf.Namespace);
    const text = fs.readFileSync(GENERATED, "utf8");
    const names = [...text.matchAll(/^ {2}"([\w.]+)": Wire\w+;$/gm)].map((m) => m[1]);
    const local = messages.map((m) => m.fullName.slice(PROTO_PACKAGE.length + 2));
    expect(new Set(names)).toEqual(new Set(local));
    for (const m of messages) {
      const name = m.fullName.slice(PROTO_PACKAGE.length + 2) as MessageName;
      // an empty message decodes to every field at its default, in the types' representation
      const v = decode(name, encode(name, {})) as unknown as Record<string, unknown>;
      expect(Object.keys(v).sort()).toEqual(m.fieldsArray.map((f) => f.name).sort());
      for (const f of m.fieldsArray) {
        f.resolve();
        const got = v[f.name];
        if (f.repeated) expect(got).toEqual([]);
        else if (f.resolvedType instanceof pb.Type) expect(got).toBeNull();
        else if (f.resolvedType instanceof pb.Enum) expect(got).toBe(0);
        else if (/64$/.test(f.type)) expect(got).toBe("0");
        else if (f.type === "bytes") expect(got).toBeInstanceOf(Uint8Array);
        else if (f.type === "bool") expect(got).toBe(false);
        else if (f.type === "string") expect(got).toBe("");
        else expect(got).toBe(0);
      }
    }
  });

  test("the compiler ties encode and decode to the .proto", () => {
    const bytes = encode("ChainReply", { ok: true, timestampMs: 5, node: { nodeId: 3, total: { cru: 4, mru: "8589934592" } }, proofs: [{ acceptedMs: 7 }] });
    const r: WireChainReply = decode("ChainReply", bytes);
    // 64-bit integers come back as decimal strings, as WireChainReply says
    expect(r.timestampMs).toBe("5");
    expect(r.node?.total?.mru).toBe("8589934592");
    expect(r.proofs[0].acceptedMs).toBe("7");
    const k: keyof WireMessages = "Units";
    expect(decode(k, encode(k, { cru: 1 })).cru).toBe("1");
    // @ts-expect-error: Units has no field cpu
    expect(() => encode("Units", { cpu: 1 })).not.toThrow();
    // @ts-expect-error: there is no message Unitz
    expect(() => encode("Unitz", {})).toThrow();
    // @ts-expect-error: a decoded uint64 is a string, not a number
    const n: number = decode("Units", encode("Units", { cru: 2 })).cru;
    expect(typeof n).toBe("string");
  });
});
