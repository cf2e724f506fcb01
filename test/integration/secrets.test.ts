/**
 * NATS credentials given in a URL never reach a log line or the terminal: a real agent process
 * against a closed port (nats_unavailable) and against a real nats-server that requires a user and
 * password (connection events), and a CLI client with a wrong password.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { freePort, natsAnswers } from "../../agent/bus/nats";
import { cli, startAgent, tmpDir } from "../utils/agent";
import { natsBin, waitFor } from "../utils/nats";

const SECRET = "secretpass-7f3a";
const TOKEN = "s3cr3tTokenValue";

function startAuthNats(port: number): Promise<ChildProcess> {
  const child = spawn(natsBin(), ["-a", "127.0.0.1", "-p", String(port), "--user", "agent", "--pass", SECRET], { stdio: "ignore" });
  return waitFor(() => natsAnswers(`nats://127.0.0.1:${port}`, 300), 10_000, "nats-server").then(() => child);
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("credentials in NATS URLs are redacted", () => {
  test.each([
    ["user and password", (port: number) => `nats://agent:${SECRET}@127.0.0.1:${port}`, SECRET],
    ["token", (port: number) => `nats://${TOKEN}@127.0.0.1:${port}`, TOKEN],
    ["token query", (port: number) => `nats://127.0.0.1:${port}?token=${TOKEN}`, TOKEN],
  ])("agent start against a closed port (%s)", async (_name, url, secret) => {
    const port = await freePort(); // nothing listens there
    const r = await cli(["run", "--nats", url(port), "--data", path.join(tmpDir("secrets-"), "data"), "--no-chain"]);
    expect(r.code).toBe(1);
    const all = r.stdout + r.stderr;
    expect(all).toContain("nats_unavailable");
    expect(all).toContain(`127.0.0.1:${port}`); // the host is still shown
    expect(all).not.toContain(secret);
  }, 30_000);

  test("the chain stand-in against a closed port", async () => {
    const port = await freePort();
    const r = await cli(["chain", "--nats", `nats://agent:${SECRET}@127.0.0.1:${port}`, "--data", path.join(tmpDir("secrets-"), "chain")]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`127.0.0.1:${port}`);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  }, 30_000);

  test("connection events of a running agent and a CLI client with a wrong password", async () => {
    const port = await freePort();
    let server = await startAuthNats(port);
    const url = `nats://agent:${SECRET}@127.0.0.1:${port}`;
    const agent = await startAgent(["--nats", url, "--data", path.join(tmpDir("secrets-"), "data"), "--no-chain"]);
    try {
      await stop(server);
      await agent.waitForEvent("nats_disconnected");
      server = await startAuthNats(port);
      await agent.waitForEvent("nats_reconnected", 20_000);
      const status = await cli(["status", "--node", "1", "--json", "--nats", url]);
      expect(status.code).toBe(0);
      const wrong = await cli(["status", "--node", "1", "--nats", `nats://agent:wrong-${SECRET}@127.0.0.1:${port}`]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain(`127.0.0.1:${port}`);
      expect(wrong.stdout + wrong.stderr).not.toContain(SECRET);
    } finally {
      await agent.stop();
      await stop(server);
    }
    const text = agent.logs.map((l) => JSON.stringify(l)).join("\n");
    expect(text).toContain("nats_connected");
    expect(text).toContain("agent_started");
    expect(text).toContain(`127.0.0.1:${port}`);
    expect(text).not.toContain(SECRET);
  }, 60_000);
});
