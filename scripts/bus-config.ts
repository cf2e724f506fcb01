/**
 * A secured bus for a grid: nkeys for every node, deployer and the chain, a nats-server
 * configuration that lets each do only its part (agent/bus/permissions.ts), and per user a seed
 * file (0600) and a config fragment. Seeds already in the directory are kept, so running it again
 * with one more node adds that node and changes no one else's key.
 *
 * Run: scripts/bus-config --out DIR --nodes ID:FARM[,ID:FARM...] [--deployers NAME[,NAME...]]
 *        [--host H] [--port P] [--prefix P] [--tls-cert F --tls-key F] [--tls-ca F] [--tls-verify]
 *        [--client-cert F --client-key F] [--jwt] [--json]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { accountJwt, credsFileText, operatorJwt, userJwt } from "../agent/bus/jwt";
import { nodeName, inboxPrefixFor, permissionsOf, serverConfig, serverConfigJwt, type Principal } from "../agent/bus/permissions";
import { scriptArgs, scriptFail } from "./script-util";

const HELP = `usage: scripts/bus-config --out DIR --nodes ID:FARM[,ID:FARM...] [--deployers NAME[,NAME...]]
                         [--host H] [--port P] [--prefix P] [--tls-cert FILE --tls-key FILE]
                         [--tls-ca FILE] [--tls-verify] [--client-cert FILE --client-key FILE] [--jwt]
                         [--json]

Writes, in DIR (created 0700):
  nats-server.conf   one nkey user per node, deployer and the chain, with the permissions of
                     docs/bus-security.md: a node publishes only its own announcements and answers
                     only its own node subjects; deployers request node subjects and find; the chain
                     alone serves the chain's subjects; each user reads only its own reply inboxes;
                     nobody gets in without a key. Start it: nats-server -c DIR/nats-server.conf
  <user>.nk          the user's nkey seed (mode 0600; kept when it exists already)
  <user>.json        a config fragment: for a node, a run --config file (nodeId, farmId, nats);
                     for deployers and the chain, the same nats block (use its values as flags)
Users: node-<id>, each deployer by its name, and chain. Node ids must be the ids the chain assigned
(provision a node's user after it registered: run this again with the new node).
  --out DIR          where to write (required)
  --nodes LIST       nodes as id:farm, comma separated (e.g. 1:1,2:1,3:2)
  --deployers LIST   deployer names (default: deployer)
  --host H, --port P where nats-server listens (default 127.0.0.1:4222)
  --prefix P         subject prefix (default tfgrid.v1)
  --tls-cert, --tls-key  the server's TLS certificate and key (TLS on; clients need the CA)
  --tls-ca FILE      the CA that signed the server's certificate (and clients' certificates)
  --tls-verify       clients must present a certificate signed by --tls-ca
  --client-cert, --client-key  a client certificate and key to name in the fragments
  --jwt              decentralised auth instead of nkey users in the server config: an operator,
                     a grid account and a system account (their seeds operator.nk, account.nk,
                     system-account.nk, kept when they exist), the server trusting the operator
                     (resolver MEMORY, accounts preloaded), and per user <user>.creds (a user JWT
                     with the same permissions, signed by the account, and its seed)
  --json             print one JSON line describing the users (for scripts and tests)`;

const fail = (msg: string): never => scriptFail("bus-config", msg);

function main(): void {
  const cli = scriptArgs(
    fail,
    {
      strings: ["out", "nodes", "deployers", "host", "port", "prefix", "tls-cert", "tls-key", "tls-ca", "client-cert", "client-key"],
      booleans: ["tls-verify", "jwt", "json"],
    },
    { help: HELP },
  );
  const out = cli.str("out") ?? fail("--out DIR is required");
  const nodesArg = cli.str("nodes") ?? fail("--nodes ID:FARM[,ID:FARM...] is required");
  const nodes = nodesArg.split(",").map((s) => {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(s);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[1]) > 0xffffffff || Number(m[2]) > 0xffffffff) return fail(`--nodes: expected id:farm with positive integers, got ${JSON.stringify(s)}`);
    return { nodeId: Number(m[1]), farmId: Number(m[2]) };
  });
  if (new Set(nodes.map((n) => n.nodeId)).size !== nodes.length) fail("--nodes: a node id appears twice");
  const deployers = (cli.str("deployers") ?? "deployer").split(",").map((s) => s.trim());
  for (const d of deployers) {
    if (!/^[A-Za-z0-9_-]{1,48}$/.test(d)) fail(`--deployers: a name is letters, digits, _ or - (1 to 48), got ${JSON.stringify(d)}`);
    if (["chain", "operator", "account", "system-account"].includes(d) || /^node-\d+$/.test(d)) fail(`--deployers: ${d} is the name of a node, the chain or a --jwt key`);
  }
  if (new Set(deployers).size !== deployers.length) fail("--deployers: a name appears twice");
  const host = cli.str("host") ?? "127.0.0.1";
  const port = cli.int("port", 4222, 1, 65535);
  const prefix = cli.str("prefix") ?? "tfgrid.v1";
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) fail("--prefix: dot-separated tokens of letters, digits, _ or -");
  const abs = (f: string | undefined): string | undefined => (f === undefined ? undefined : path.resolve(f));
  const tlsCert = abs(cli.str("tls-cert"));
  const tlsKey = abs(cli.str("tls-key"));
  const tlsCa = abs(cli.str("tls-ca"));
  const clientCert = abs(cli.str("client-cert"));
  const clientKey = abs(cli.str("client-key"));
  if ((tlsCert === undefined) !== (tlsKey === undefined)) fail("--tls-cert and --tls-key go together");
  if ((clientCert === undefined) !== (clientKey === undefined)) fail("--client-cert and --client-key go together");
  if (cli.bool("tls-verify") && (!tlsCert || !tlsCa)) fail("--tls-verify needs --tls-cert, --tls-key and --tls-ca");
  for (const f of [tlsCert, tlsKey, tlsCa, clientCert, clientKey]) if (f && !fs.existsSync(f)) fail(`no such file: ${f}`);

  fs.mkdirSync(out, { recursive: true, mode: 0o700 });
  fs.chmodSync(out, 0o700);
  const { nkeys } = require("@nats-io/transport-node") as typeof import("@nats-io/transport-node");
  const writePrivate = (file: string, text: string): void => {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
    fs.chmodSync(file, 0o600);
  };
  /** a key pair (user, account or operator): its seed file when there is one, else a new one */
  const keyPair = (name: string, kind: "user" | "account" | "operator" = "user"): { publicKey: string; seed: string; seedFile: string; kp: ReturnType<typeof nkeys.fromSeed> } => {
    const seedFile = path.join(out, `${name}.nk`);
    const letter = { user: "U", account: "A", operator: "O" }[kind];
    let seed: string;
    if (fs.existsSync(seedFile)) {
      const m = new RegExp(`\\bS${letter}[A-Z2-7]{56}\\b`).exec(fs.readFileSync(seedFile, "utf8"));
      if (!m) return fail(`${seedFile} holds no ${kind} nkey seed; remove it to get a new key`);
      seed = m[0];
    } else {
      const created = kind === "user" ? nkeys.createUser() : kind === "account" ? nkeys.createAccount() : nkeys.createOperator();
      seed = new TextDecoder().decode(created.getSeed());
    }
    const kp = nkeys.fromSeed(new TextEncoder().encode(seed));
    const publicKey = kp.getPublicKey();
    writePrivate(seedFile, `# NATS ${kind} nkey seed of ${name} (public key ${publicKey}); keep it secret\n${seed}\n`);
    return { publicKey, seed, seedFile, kp };
  };
  const jwtMode = cli.bool("jwt");
  const operator = jwtMode ? keyPair("operator", "operator") : null;
  const account = jwtMode ? keyPair("account", "account") : null;
  const systemAccount = jwtMode ? keyPair("system-account", "account") : null;

  // nats:// with TLS too: the client's tls options (the CA) turn TLS on
  const url = `nats://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const principals: Array<Principal & { seedFile: string; configFile: string; credsFile?: string }> = [];
  const add = (p: Omit<Principal, "publicKey">): void => {
    const k = keyPair(p.name);
    let credsFile: string | undefined;
    if (account) {
      // the user's JWT carries its permissions; the account signs it
      credsFile = path.join(out, `${p.name}.creds`);
      writePrivate(credsFile, credsFileText(userJwt(account.kp, k.publicKey, p.name, permissionsOf({ ...p, publicKey: k.publicKey }, prefix)), k.seed));
    }
    principals.push({ ...p, publicKey: k.publicKey, seedFile: k.seedFile, credsFile, configFile: path.join(out, `${p.name}.json`) });
  };
  for (const n of nodes) add({ kind: "node", name: nodeName(n.nodeId), nodeId: n.nodeId, farmId: n.farmId });
  for (const d of deployers) add({ kind: "deployer", name: d });
  add({ kind: "chain", name: "chain" });

  const serverTls = tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey, caFile: tlsCa, verify: cli.bool("tls-verify") } : undefined;
  const conf =
    operator && account && systemAccount
      ? serverConfigJwt({
          host,
          port,
          tls: serverTls,
          operatorJwt: operatorJwt(operator.kp, "capacity-agent grid", systemAccount.publicKey),
          systemAccount: systemAccount.publicKey,
          accounts: { [account.publicKey]: accountJwt(operator.kp, account.publicKey, "grid"), [systemAccount.publicKey]: accountJwt(operator.kp, systemAccount.publicKey, "SYS") },
        })
      : serverConfig({ host, port, prefix, principals, tls: serverTls });
  const confFile = path.join(out, "nats-server.conf");
  fs.writeFileSync(confFile, conf, { mode: 0o600 });
  for (const p of principals) {
    const tls = tlsCa || clientCert ? { ...(tlsCa ? { caFile: tlsCa } : {}), ...(clientCert ? { certFile: clientCert, keyFile: clientKey } : {}) } : undefined;
    const auth = p.credsFile ? { credsFile: p.credsFile } : { nkeySeedFile: p.seedFile };
    const nats = { servers: [url], ...auth, inboxPrefix: inboxPrefixFor(p.name), ...(tls ? { tls } : {}) };
    const fragment = p.kind === "node" ? { nodeId: p.nodeId, farmId: p.farmId, nats } : { nats };
    fs.writeFileSync(p.configFile, JSON.stringify(fragment, null, 2) + "\n", { mode: 0o600 });
  }
  const users = principals.map((p) => ({ name: p.name, kind: p.kind, nodeId: p.nodeId, farmId: p.farmId, publicKey: p.publicKey, seedFile: p.seedFile, credsFile: p.credsFile, configFile: p.configFile, inboxPrefix: inboxPrefixFor(p.name) }));
  if (cli.bool("json")) {
    process.stdout.write(JSON.stringify({ url, serverConfig: confFile, users }) + "\n");
    return;
  }
  const tlsFlags = `${tlsCa ? ` --nats-ca ${tlsCa}` : ""}${clientCert ? ` --nats-cert ${clientCert} --nats-key ${clientKey}` : ""}`;
  process.stdout.write(`wrote ${confFile} (${principals.length} users${account ? `, decentralised auth: operator ${operator?.publicKey}, account ${account.publicKey}` : ""}); start it: nats-server -c ${confFile}\n`);
  for (const p of users) {
    const how =
      p.kind === "node"
        ? `capacity-agent run --config ${p.configFile} ...`
        : p.kind === "chain"
          ? `capacity-agent chain --nats ${url} ${p.credsFile ? `--nats-creds ${p.credsFile}` : `--nats-nkey ${p.seedFile}`} --nats-inbox-prefix ${p.inboxPrefix}${tlsFlags}`
          : `capacity-agent <command> --nats ${url} ${p.credsFile ? `--nats-creds ${p.credsFile}` : `--nats-nkey ${p.seedFile}`} --nats-inbox-prefix ${p.inboxPrefix}${tlsFlags}`;
    process.stdout.write(`  ${p.name.padEnd(18)} ${p.publicKey}  ${how}\n`);
  }
}

main();
