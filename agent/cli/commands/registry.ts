import * as fs from "node:fs";
import { ChainClient } from "../../chain/client";
import { upsertRegistryFile } from "../../registry/file";
import { IdentityError } from "../../identity/errors";
import { loadKeyFile, type KeyFile } from "../../identity/keys";
import { withNats } from "../client";
import { EXIT_FAIL, EXIT_OK, NATS_OPTION, UsageError, intFlag, req, type Command } from "../framework";

export const registryCommand: Command = {
  name: "registry",
  help: `usage: capacity-agent registry add --file REGISTRY --twin ID --key KEYFILE [--force]
       capacity-agent registry add --file REGISTRY --node ID --farm F [--node-twin T] --key KEYFILE [--force]
       capacity-agent registry add --chain [--twin ID] --key KEYFILE [--nats URL]
       capacity-agent registry add --chain --farm F [--twin T] [--name NAME] [--open | --closed]
                                   [--allow T[,T..]] [--disallow T[,T..]] --key KEYFILE [--nats URL]

--file: adds an entry binding an id to the public key of KEYFILE (only the public key is copied).
Adding what is already there changes nothing; an id already bound to another key (or a node to
another farm or twin) is refused with [already_registered] unless --force replaces it. A registry
or key file that is not valid JSON is refused naming the file. Agents re-read the file when it
changes.
--chain: registers the twin of KEYFILE's key on the chain stand-in, as a twin does on tfchain. The
chain assigns twin ids and binds each to the key that registered it (one twin per key): without
--twin, or with --twin 0, the key's twin is created (or, when it has one, returned) and its id
printed. --twin ID with another id than the key's own twin is refused ([unauthorized]). Agents
resolve twins through the chain, so a twin registered there can deploy on any node. Nodes
register themselves (and learn their node id) when their agent starts.
--chain --farm 0: creates a farm owned by KEYFILE's twin (register the twin first), as a farmer
does on tfchain; the chain assigns the id (printed) and farm names are unique (--name, at most 64
printable characters; default farm-<id>). --farm F (F > 0): changes farm F, which KEYFILE's twin
must own: --name renames it, --open lets any twin's node join (dev grids), --closed only the
owner's and allowed twins' nodes (a new farm is closed), --allow / --disallow add or remove twins
whose nodes may join. --twin T, when given, must be KEYFILE's twin. A chain started with
--require-farm registers nodes only into registered farms.
Prints {"twin","address","publicKey","type"} (or {"node","farm",...}, or
{"farm","twin","name","open","allowedTwins"}); exit 1 when the chain refuses, with [code] and the
reason on stderr.`,
  options: {
    file: { type: "string" },
    chain: { type: "boolean" },
    twin: { type: "string" },
    node: { type: "string" },
    farm: { type: "string" },
    "node-twin": { type: "string" },
    name: { type: "string" },
    open: { type: "boolean" },
    closed: { type: "boolean" },
    allow: { type: "string" },
    disallow: { type: "string" },
    key: { type: "string" },
    force: { type: "boolean" },
    ...NATS_OPTION,
  },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length !== 1 || positionals[0] !== "add") throw new UsageError(`expected "registry add"`);
    const keyFile = req(values, "key");
    const twin = intFlag(values, "twin", { min: 0, max: 0xffffffff });
    const node = intFlag(values, "node", { max: 0xffffffff });
    if (values.force !== undefined && values.file === undefined) throw new UsageError("--force replaces an entry in a registry file: use it with --file");
    const farmOnChain = values.chain === true && node === undefined && values.farm !== undefined;
    for (const f of ["name", "open", "closed", "allow", "disallow"]) {
      if (values[f] !== undefined && !farmOnChain) throw new UsageError(`--${f} is about a farm: use it with --chain --farm F`);
    }
    if (farmOnChain) {
      if (values.file !== undefined) throw new UsageError("give --file REGISTRY or --chain, not both");
      const farm = intFlag(values, "farm", { min: 0, max: 0xffffffff })!;
      if (values.open && values.closed) throw new UsageError("give --open or --closed, not both");
      const twins = (flag: string): number[] => {
        const v = values[flag];
        if (v === undefined) return [];
        const list = String(v).split(",").map((t) => t.trim());
        if (list.some((t) => !/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 0xffffffff)) throw new UsageError(`--${flag} expects twin ids (1 to 4294967295) separated by commas, got ${JSON.stringify(v)}`);
        return list.map(Number);
      };
      const allowTwins = twins("allow");
      const disallowTwins = twins("disallow");
      const name = (values.name as string | undefined) ?? "";
      const signer = await loadKeyFile(keyFile);
      const r = await withNats(values, io, async (bus, subjects) => {
        const client = new ChainClient(bus, subjects);
        const res = await client.registerFarm(signer, { farmId: farm, twinId: twin ?? 0, name, access: values.open ? "open" : values.closed ? "closed" : "keep", allowTwins, disallowTwins });
        return { res, info: res.ok ? await client.farm(res.id) : undefined };
      });
      if (!r.res.ok) {
        io.err(`capacity-agent registry: the chain refused: [${r.res.code}] ${r.res.message}`);
        return EXIT_FAIL;
      }
      const f = r.info;
      io.out(JSON.stringify({ farm: r.res.id, twin: f?.twinId ?? twin, name: f?.name ?? name, open: f?.open ?? false, allowedTwins: f?.allowedTwins ?? [] }));
      return EXIT_OK;
    }
    if (values.chain) {
      if (values.file !== undefined) throw new UsageError("give --file REGISTRY or --chain, not both");
      if (node !== undefined) throw new UsageError("--chain registers twins and farms; a node registers itself (and learns its id) when its agent starts");
      const signer = await loadKeyFile(keyFile);
      const r = await withNats(values, io, (bus, subjects) => new ChainClient(bus, subjects).registerTwin(signer, twin ?? 0));
      if (!r.ok) {
        io.err(`capacity-agent registry: the chain refused: [${r.code}] ${r.message}`);
        return EXIT_FAIL;
      }
      io.out(JSON.stringify({ twin: r.id, address: signer.address, publicKey: "0x" + Buffer.from(signer.publicKey).toString("hex"), type: signer.scheme, registered: r.kind === "registered" }));
      return EXIT_OK;
    }
    if ((twin === undefined) === (node === undefined)) throw new UsageError("give exactly one of --twin ID or --node ID");
    if (twin === 0) throw new UsageError("--twin 0 asks the chain for an id: use it with --chain; a registry file binds an id you choose");
    const file = req(values, "file");
    const kf = readPublicKeyFile(keyFile);
    const force = values.force === true;
    if (twin !== undefined) {
      upsertRegistryFile(file, { kind: "twin", id: twin, publicKey: kf.publicKey, scheme: kf.type }, { force });
      io.out(JSON.stringify({ twin, address: kf.address, publicKey: kf.publicKey, type: kf.type }));
    } else {
      const farm = intFlag(values, "farm", { required: true, max: 0xffffffff })!;
      const nodeTwin = intFlag(values, "node-twin", { max: 0xffffffff }) ?? node!;
      upsertRegistryFile(file, { kind: "node", id: node!, farmId: farm, twinId: nodeTwin, publicKey: kf.publicKey, scheme: kf.type }, { force });
      io.out(JSON.stringify({ node, farm, address: kf.address, publicKey: kf.publicKey, type: kf.type }));
    }
    return EXIT_OK;
  },
};

/** The public half of a key file; errors name the file and what is wrong with it. */
function readPublicKeyFile(file: string): Pick<KeyFile, "publicKey" | "type" | "address"> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new IdentityError("key_missing", `key file ${file} cannot be read (create one with: capacity-agent keys new --out ${file})`, { path: file, cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new IdentityError("key_invalid", `key file ${file} is not valid JSON (${(err as Error).message})`, { path: file, cause: err });
  }
  const kf = (raw ?? {}) as Partial<KeyFile>;
  if (kf.type !== "ed25519" && kf.type !== "sr25519") throw new IdentityError("key_invalid", `key file ${file}: type must be "ed25519" or "sr25519"`, { path: file });
  if (typeof kf.publicKey !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(kf.publicKey)) throw new IdentityError("key_invalid", `key file ${file}: publicKey must be 32 bytes as 0x hex`, { path: file });
  return { publicKey: kf.publicKey, type: kf.type, address: typeof kf.address === "string" ? kf.address : "" };
}
