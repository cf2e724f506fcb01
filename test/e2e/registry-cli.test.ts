/**
 * `registry add --file`: an id already bound to another key is not silently handed over, and a
 * broken registry or key file is named in the error (issue 8.5). Real processes, real files.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cli, tmpDir } from "../utils/agent";

const cleanEnv = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith("CAPACITY_AGENT_")).map((k) => [k, undefined]));

async function newKey(dir: string, name: string): Promise<{ file: string; publicKey: string }> {
  const file = path.join(dir, name);
  const r = await cli(["keys", "new", "--out", file], cleanEnv);
  expect(r.code).toBe(0);
  return { file, publicKey: (JSON.parse(r.stdout) as { publicKey: string }).publicKey };
}

test("a twin bound to one key is not replaced by another without --force; the same key again is fine", async () => {
  const dir = tmpDir("reg-twin-");
  const reg = path.join(dir, "registry.json");
  const a = await newKey(dir, "a.json");
  const b = await newKey(dir, "b.json");
  expect((await cli(["registry", "add", "--file", reg, "--twin", "7", "--key", a.file], cleanEnv)).code).toBe(0);
  expect((await cli(["registry", "add", "--file", reg, "--twin", "7", "--key", a.file], cleanEnv)).code).toBe(0);
  const before = fs.readFileSync(reg, "utf8");

  const refused = await cli(["registry", "add", "--file", reg, "--twin", "7", "--key", b.file], cleanEnv);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain("[already_registered]");
  expect(refused.stderr).toContain(reg);
  expect(refused.stderr).toContain(a.publicKey);
  expect(refused.stderr).toContain("--force");
  expect(fs.readFileSync(reg, "utf8")).toBe(before);

  const forced = await cli(["registry", "add", "--file", reg, "--twin", "7", "--key", b.file, "--force"], cleanEnv);
  expect(forced.code).toBe(0);
  expect(JSON.parse(fs.readFileSync(reg, "utf8")).twins).toEqual([{ id: 7, publicKey: b.publicKey, scheme: "ed25519" }]);
});

test("a node bound to one key or farm is not replaced without --force", async () => {
  const dir = tmpDir("reg-node-");
  const reg = path.join(dir, "registry.json");
  const a = await newKey(dir, "a.json");
  const b = await newKey(dir, "b.json");
  expect((await cli(["registry", "add", "--file", reg, "--node", "3", "--farm", "1", "--key", a.file], cleanEnv)).code).toBe(0);
  for (const args of [["--farm", "1", "--key", b.file], ["--farm", "2", "--key", a.file]]) {
    const r = await cli(["registry", "add", "--file", reg, "--node", "3", ...args], cleanEnv);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[already_registered]");
  }
  expect(JSON.parse(fs.readFileSync(reg, "utf8")).nodes).toEqual([expect.objectContaining({ id: 3, farmId: 1, publicKey: a.publicKey })]);
});

test("a registry or key file that is not JSON is named in the error", async () => {
  const dir = tmpDir("reg-json-");
  const reg = path.join(dir, "registry.json");
  const a = await newKey(dir, "a.json");
  fs.writeFileSync(reg, "{ not json");
  const r1 = await cli(["registry", "add", "--file", reg, "--twin", "7", "--key", a.file], cleanEnv);
  expect(r1.code).toBe(1);
  expect(r1.stderr).toContain("[invalid_registry]");
  expect(r1.stderr).toContain(`${reg}: registry file is not valid JSON`);
  expect(fs.readFileSync(reg, "utf8")).toBe("{ not json");

  const badKey = path.join(dir, "bad.json");
  fs.writeFileSync(badKey, "nope", { mode: 0o600 });
  const r2 = await cli(["registry", "add", "--file", path.join(dir, "other.json"), "--twin", "7", "--key", badKey], cleanEnv);
  expect(r2.code).toBe(1);
  expect(r2.stderr).toContain("[key_invalid]");
  expect(r2.stderr).toContain(`key file ${badKey} is not valid JSON`);
});
