/**
 * Issue 8.1: one process per data directory. A second `run` (or `chain`) on a directory in use
 * exits 1 with [data_dir_locked] naming the holder's pid; the lock dies with its holder, SIGKILL
 * included, so the next start after a crash just works. Real processes, real nats-server.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cli, startAgent, startChain, tmpDir, type AgentProcess } from "../utils/agent";
import { startNats, type NatsServerHandle } from "../utils/nats";

const cleanEnv = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith("CAPACITY_AGENT_")).map((k) => [k, undefined]));

let nats: NatsServerHandle;
const running: AgentProcess[] = [];

beforeAll(async () => {
  nats = await startNats();
});

afterAll(async () => {
  for (const p of running) await p.kill();
  await nats?.stop();
});

test("a second agent on one data directory refuses to start naming the first's pid; after SIGKILL of the first a new one starts", async () => {
  const data = path.join(tmpDir("lock-agent-"), "data");
  const args = ["--data", data, "--nats", nats.url, "--no-chain", "--log-level", "info"];
  const first = await startAgent(args, cleanEnv);
  running.push(first);

  const second = await cli(["run", ...args], cleanEnv);
  expect(second.code).toBe(1);
  expect(second.stderr).toContain("[data_dir_locked]");
  expect(second.stderr).toContain(`pid ${first.child.pid}`);
  expect(second.stderr).toContain(data);
  // it logged why, with the code, and did not start
  expect(second.stdout).toContain('"event":"agent_start_failed"');
  expect(second.stdout).not.toContain('"event":"agent_started"');

  await first.kill(); // SIGKILL: no clean shutdown, the pid file stays behind
  expect(fs.existsSync(path.join(data, "agent.pid"))).toBe(true);
  const third = await startAgent(args, cleanEnv);
  running.push(third);
  expect(JSON.parse(fs.readFileSync(path.join(data, "agent.pid"), "utf8")).pid).toBe(third.child.pid);
  expect(await third.stop()).toBe(0);
  // a clean stop removes the pid file
  expect(fs.existsSync(path.join(data, "agent.pid"))).toBe(false);
});

test("a second chain stand-in on one data directory refuses to start; after SIGKILL a new one starts", async () => {
  const data = path.join(tmpDir("lock-chain-"), "data");
  const args = ["--data", data, "--nats", nats.url];
  const first = await startChain(args, cleanEnv);
  running.push(first);
  const second = await cli(["chain", ...args], cleanEnv);
  expect(second.code).toBe(1);
  expect(second.stderr).toContain("[data_dir_locked]");
  expect(second.stderr).toContain(`pid ${first.child.pid}`);
  await first.kill();
  const third = await startChain(args, cleanEnv);
  running.push(third);
  expect(await third.stop()).toBe(0);
});
