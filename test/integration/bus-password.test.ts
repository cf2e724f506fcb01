/**
 * User/password and token credentials against real nats-servers that require them: the CLI reads
 * them from files or the environment, gets in, and never prints them; wrong ones are refused with
 * nats_unauthorized.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort, natsAnswers } from "../../agent/bus/nats";
import { cli, tmpDir } from "../utils/agent";
import { natsBin, waitFor } from "../utils/nats";

const PASSWORD = "pw-Zq81xK0c7";
const TOKEN = "tok-Hf29sLw0aQ";
let dir: string;
const servers: ChildProcess[] = [];

async function server(args: string[]): Promise<string> {
  const port = await freePort();
  const child = spawn(natsBin(), ["-a", "127.0.0.1", "-p", String(port), ...args], { stdio: ["ignore", "ignore", "ignore"] });
  servers.push(child);
  const url = `nats://127.0.0.1:${port}`;
  await waitFor(() => natsAnswers(url, 300), 10_000, "nats-server");
  return url;
}

let userUrl: string;
let tokenUrl: string;

beforeAll(async () => {
  dir = tmpDir("bus-password-");
  userUrl = await server(["--user", "farmer", "--pass", PASSWORD]);
  tokenUrl = await server(["--auth", TOKEN]);
});

afterAll(async () => {
  for (const s of servers) {
    if (s.exitCode !== null) continue;
    const exited = new Promise((r) => s.once("exit", r));
    s.kill("SIGTERM");
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** `find` connects, asks, and (no agent here) finds nothing: exit 1 with "no node", not a connection error. */
async function find(url: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  const r = await cli(["find", "--nats", url, ...args], env);
  return { code: r.code, out: r.stdout + r.stderr };
}

test("a user and its password file, or the password from the environment, get in; the password is never printed", async () => {
  const pw = path.join(dir, "pw");
  fs.writeFileSync(pw, PASSWORD + "\n", { mode: 0o600 });
  for (const r of [await find(userUrl, ["--nats-user", "farmer", "--nats-password-file", pw]), await find(userUrl, ["--nats-user", "farmer"], { CAPACITY_AGENT_NATS_PASSWORD: PASSWORD })]) {
    expect(r.out).toMatch(/no node has room/);
    expect(r.out).not.toContain(PASSWORD);
  }
  const wrong = path.join(dir, "wrong");
  fs.writeFileSync(wrong, "not-the-password\n", { mode: 0o600 });
  const bad = await find(userUrl, ["--nats-user", "farmer", "--nats-password-file", wrong]);
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/\[nats_unauthorized\]/);
  expect(bad.out).not.toContain("not-the-password");
  // no credentials at all
  expect((await find(userUrl, [])).out).toMatch(/\[nats_unauthorized\]/);
}, 30_000);

test("a token file or CAPACITY_AGENT_NATS_TOKEN gets in; the token is never printed", async () => {
  const tf = path.join(dir, "token");
  fs.writeFileSync(tf, TOKEN + "\n", { mode: 0o600 });
  for (const r of [await find(tokenUrl, ["--nats-token-file", tf]), await find(tokenUrl, [], { CAPACITY_AGENT_NATS_TOKEN: TOKEN })]) {
    expect(r.out).toMatch(/no node has room/);
    expect(r.out).not.toContain(TOKEN);
  }
  expect((await find(tokenUrl, [])).out).toMatch(/\[nats_unauthorized\]/);
}, 30_000);
