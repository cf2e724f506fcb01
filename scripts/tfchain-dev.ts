/**
 * A local tfchain: the real runtime (wasm from a raw chain spec) executed offline by
 * @acala-network/chopsticks, with instant block building, dev accounts funded, on 127.0.0.1.
 *
 * Run: scripts/tfchain-dev [--spec FILE] [--port P] [--db FILE] [--log-level L]
 *      scripts/tfchain-dev fund --url URL [--amount TFT] ADDRESS...
 * (the wrapper builds dist/ when needed, then runs: node dist/scripts/tfchain-dev.js ...)
 *
 * Prints `ws://127.0.0.1:P` on one line once blocks build; SIGINT/SIGTERM stop it cleanly.
 * Workarounds for the old runtime (see docs/tfchain.md): Aura timestamp ahead of the clock on a
 * fresh chain, validate_transaction without the block hash for TaggedTransactionQueue < 3, the
 * legacy type definitions of agent/tfchain/types.ts given to chopsticks.
 * One RPC method of its own, for measurements (scripts/chain-footprint --real): dev_storageDiff.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort } from "../agent/bus/nats";
import { DEV_ACCOUNT_URIS, DEV_FUND_PLANCK, fundAccounts, PLANCK_PER_TFT } from "../agent/tfchain/dev";
import { TFGRID_LEGACY_TYPES } from "../agent/tfchain/types";
import { scriptArgs, scriptFail } from "./script-util";

const ROOT = path.resolve(__dirname, "..", "..");
/** The spec the issue names: ../shared/tfchain next to the repository (or $TFCHAIN_SPEC). */
export const DEFAULT_SPEC = path.resolve(ROOT, "..", "shared", "tfchain", "devnet-spec49.chainSpecRaw.json");

const HELP = `usage: scripts/tfchain-dev [--spec FILE] [--port P] [--db FILE] [--log-level L]
       scripts/tfchain-dev fund --url URL [--amount TFT] ADDRESS...

Runs the tfchain runtime of a raw chain spec locally (chopsticks, no network), builds a block for
each submitted extrinsic, funds the dev accounts (//Alice .. //Ferdie, sr25519 and ed25519) and
prints ws://127.0.0.1:P on one line once blocks build. Ctrl-C (SIGINT/SIGTERM) stops it.
  --spec FILE      raw chain spec (default: $TFCHAIN_SPEC or ${DEFAULT_SPEC})
  --port P         RPC port on 127.0.0.1 (default: a free port)
  --db FILE        keep blocks and state in this SQLite file; a restart resumes from its last block
  --log-level L    chopsticks log level (default warn)

fund: gives each ADDRESS (SS58) a free balance of --amount TFT (default ${DEV_FUND_PLANCK / PLANCK_PER_TFT}) on a chain
started by this script (dev_setStorage: a dev chain only).`;

function fail(msg: string): never {
  return scriptFail("tfchain-dev", msg);
}

/** TaggedTransactionQueue runtime api id (blake2_64 of its name). */
const TX_QUEUE_API = "0xd2bc9897eed08f15";

type Chopsticks = typeof import("@acala-network/chopsticks");

/**
 * chopsticks-core 1.5.1 always calls validate_transaction(source, tx, block_hash), the API of
 * TaggedTransactionQueue version 3. Runtimes with version 2 (like spec 49) take (source, tx) and
 * panic on the extra bytes. Override the method on the class prototype: same call, without the
 * hash when the runtime's API is older than 3.
 */
function patchValidateExtrinsic(cs: Chopsticks): void {
  const { u8aConcat, u8aToHex } = require("@polkadot/util") as typeof import("@polkadot/util");
  const proto = cs.Blockchain.prototype as unknown as {
    validateExtrinsic(this: InstanceType<Chopsticks["Blockchain"]>, extrinsic: `0x${string}`, source?: `0x${string}`): Promise<unknown>;
  };
  const original = proto.validateExtrinsic;
  proto.validateExtrinsic = async function (extrinsic, source = "0x02") {
    const version = await this.head.runtimeVersion;
    const api = version.apis.find(([id]) => id === TX_QUEUE_API);
    if (!api || api[1] >= 3) return original.call(this, extrinsic, source);
    const res = await this.head.call("TaggedTransactionQueue_validate_transaction", [u8aToHex(u8aConcat(source, extrinsic))]);
    const registry = await this.head.registry;
    return registry.createType("TransactionValidity", res.result);
  };
}

/**
 * `dev_storageDiff(blockHash, prefixes?)`: the storage entries the block wrote, each as
 * [key, value after the block, value before it] (hex; null where absent), only keys that start
 * with one of `prefixes` when given. Read from the block's own storage layers in chopsticks, so it
 * costs O(entries written), where a snapshot by state_getKeysPaged walks every block's layer
 * (chopsticks keeps one per block) for each key and slows down as the chain grows. Entries whose
 * value did not change (chopsticks also caches values read through a block in its layers) are
 * left out.
 */
function registerStorageDiffRpc(cs: Chopsticks): void {
  const plugins = require("@acala-network/chopsticks/plugins/index") as { rpcPluginHandlers: Record<string, unknown> };
  type Layer = { get(key: string, cache: boolean): Promise<string | undefined> };
  plugins.rpcPluginHandlers.dev_storageDiff = async ({ chain }: { chain: InstanceType<Chopsticks["Blockchain"]> }, params: unknown[]) => {
    const [hash, prefixes] = params as [unknown, unknown];
    if (typeof hash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(hash)) throw new cs.ResponseError(-32602, "dev_storageDiff: expects a block hash");
    if (prefixes !== undefined && prefixes !== null && !(Array.isArray(prefixes) && prefixes.every((p) => typeof p === "string" && /^0x[0-9a-fA-F]*$/.test(p)))) {
      throw new cs.ResponseError(-32602, "dev_storageDiff: prefixes must be a list of hex strings");
    }
    const block = await chain.getBlock(hash as `0x${string}`);
    if (!block) throw new cs.ResponseError(-32602, `dev_storageDiff: block ${hash} not found`);
    const parent = await block.parentBlock;
    const diff = (await block.storageDiff()) as Record<string, string | null | undefined>;
    const out: Array<[string, string | null, string | null]> = [];
    for (const [key, v] of Object.entries(diff)) {
      if (Array.isArray(prefixes) && !(prefixes as string[]).some((p) => key.startsWith(p))) continue;
      // uncached read of the parent's value (a cached read would add it to the parent's layer)
      const before = parent ? await (parent.storage as unknown as Layer).get(key, false) : undefined;
      const old = before === undefined || before === "Deleted" ? null : before;
      const now = v ?? null;
      if (now === old) continue;
      out.push([key, now, old]);
    }
    return out;
  };
}

async function serve(argv: string[]): Promise<void> {
  const cli = scriptArgs(fail, { strings: ["spec", "port", "db", "log-level"] }, { help: HELP, argv });
  const spec = path.resolve(cli.str("spec") ?? process.env.TFCHAIN_SPEC ?? DEFAULT_SPEC);
  if (!fs.existsSync(spec)) {
    fail(`chain spec ${spec} not found: put the raw tfchain spec there, or pass --spec FILE or set TFCHAIN_SPEC (see docs/tfchain.md)`);
  }
  const port = cli.str("port") === undefined ? await freePort() : cli.int("port", 0, 1, 65535);
  const dbFlag = cli.str("db");
  const db = dbFlag === undefined ? undefined : path.resolve(dbFlag);
  const resume = db !== undefined && fs.existsSync(db) && fs.statSync(db).size > 0;
  process.env.LOG_LEVEL = cli.str("log-level") ?? process.env.LOG_LEVEL ?? "warn";

  // loaded after LOG_LEVEL is set: chopsticks reads it when its logger module loads
  const cs = require("@acala-network/chopsticks") as Chopsticks;
  patchValidateExtrinsic(cs);
  registerStorageDiffRpc(cs);

  const ctx = await cs.setupWithServer({
    genesis: spec,
    host: "127.0.0.1",
    port,
    "build-block-mode": cs.BuildBlockMode.Instant,
    db,
    "save-blocks": db !== undefined,
    resume: resume ? true : undefined,
    // Aura: a fresh chain needs a timestamp a little ahead of the clock (its slot must grow from
    // block #1 on); a resumed chain goes on from the timestamp of its last block.
    timestamp: resume ? undefined : Date.now() + 5 * 60_000,
    "registered-types": { types: TFGRID_LEGACY_TYPES },
    // keep every block in memory: past chopsticks' default of 500 this runtime's nonces read back
    // stale (seen after ~600 blocks); a dev chain of a day is 14,400 blocks, a few hundred MB
    "max-memory-block-count": 1_000_000,
  } as Parameters<Chopsticks["setupWithServer"]>[0]);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    ctx.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`tfchain-dev: stop: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  const { Keyring } = require("@polkadot/keyring") as typeof import("@polkadot/keyring");
  const addresses: string[] = [];
  for (const type of ["sr25519", "ed25519"] as const) {
    const keyring = new Keyring({ type, ss58Format: 42 });
    for (const uri of DEV_ACCOUNT_URIS) addresses.push(keyring.addFromUri(uri).address);
  }
  await cs.setStorage(ctx.chain, { System: { Account: addresses.map((a) => [[a], { providers: 1, data: { free: DEV_FUND_PLANCK.toString() } }]) } });
  // blocks build: one now, with the funding in it
  const block = await ctx.chain.newBlock();
  const url = `ws://127.0.0.1:${port}`;
  process.stdout.write(`${url}\n`);
  process.stderr.write(`tfchain-dev: ${(await ctx.chain.head.runtimeVersion).specName} spec ${(await ctx.chain.head.runtimeVersion).specVersion}, block #${block.number}${resume ? ` (resumed from ${db})` : ""}, listening on ${url}\n`);
}

async function fund(argv: string[]): Promise<void> {
  const failFund: (msg: string) => never = (msg) => fail(`fund: ${msg}`);
  const cli = scriptArgs(failFund, { strings: ["url", "amount"] }, { help: HELP, argv, positionals: true });
  const url = cli.str("url");
  if (!url || !/^wss?:\/\//.test(url)) failFund(`--url expects the chain's ws:// or wss:// URL, got ${JSON.stringify(url ?? "")}`);
  if (cli.positionals.length === 0) failFund("name at least one SS58 ADDRESS to fund");
  const tft = cli.int("amount", Number(DEV_FUND_PLANCK / PLANCK_PER_TFT), 1, 1_000_000_000);
  const funded = await fundAccounts(url, cli.positionals, BigInt(tft) * PLANCK_PER_TFT).catch((err: unknown) => {
    const e = err as { code?: string; message?: string };
    failFund(`${e.code ? `[${e.code}] ` : ""}${e.message ?? String(err)}`);
  });
  for (const f of funded) process.stdout.write(`${f.address} ${f.free.toString()}\n`);
}

if (require.main === module) {
  const [first, ...rest] = process.argv.slice(2);
  const run = first === "fund" ? fund(rest) : serve(process.argv.slice(2));
  run.then(
    () => {
      if (first === "fund") process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`tfchain-dev: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
