import * as fs from "node:fs";
import { ChainClient } from "../../chain/client";
import { upsertRegistryFile } from "../../registry/file";
import { loadKeyFile, type KeyFile } from "../../identity/keys";
import { withNats } from "../client";
import { EXIT_FAIL, EXIT_OK, NATS_OPTION, UsageError, intFlag, req, type Command } from "../framework";

export const registryCommand: Command = {
  name: "registry",
  help: `usage: capacity-agent registry add --file REGISTRY --twin ID --key KEYFILE
       capacity-agent registry add --file REGISTRY --node ID --farm F [--node-twin T] --key KEYFILE
       capacity-agent registry add --chain --twin ID --key KEYFILE [--nats URL]
       capacity-agent registry add --chain --farm F --twin T [--name NAME] --key KEYFILE [--nats URL]

--file: adds (or replaces) an entry binding an id to the public key of KEYFILE (only the public
key is copied). Agents re-read the file when it changes.
--chain: registers twin ID on the chain stand-in with a call signed by KEYFILE, as a twin does on
tfchain (the first registration binds the id to the key; later ones must be signed by the same
key). Agents resolve twins through the chain, so a twin registered there can deploy on any node.
Nodes register themselves on the chain when their agent starts.
--chain --farm F --twin T: registers farm F owned by twin T, as a farmer does on tfchain, with a
call signed by KEYFILE, the key of twin T (register the twin first). The first registration binds
the farm to twin T; only twin T may register it again, to rename it (--name, at most 64 printable
characters; without --name the farm keeps its name). A chain started with --require-farm registers
nodes only into registered farms.
Prints {"twin","address","publicKey","type"} (or {"node","farm",...}, or {"farm","twin","name"});
exit 1 when the chain refuses, with [code] and the reason on stderr.`,
  options: {
    file: { type: "string" },
    chain: { type: "boolean" },
    twin: { type: "string" },
    node: { type: "string" },
    farm: { type: "string" },
    "node-twin": { type: "string" },
    name: { type: "string" },
    key: { type: "string" },
    ...NATS_OPTION,
  },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length !== 1 || positionals[0] !== "add") throw new UsageError(`expected "registry add"`);
    const keyFile = req(values, "key");
    const twin = intFlag(values, "twin", { max: 0xffffffff });
    const node = intFlag(values, "node", { max: 0xffffffff });
    const farmOnChain = values.chain === true && node === undefined && values.farm !== undefined;
    if (values.name !== undefined && !farmOnChain) throw new UsageError("--name names a farm: use it with --chain --farm F --twin T");
    if (farmOnChain) {
      if (values.file !== undefined) throw new UsageError("give --file REGISTRY or --chain, not both");
      const farm = intFlag(values, "farm", { max: 0xffffffff })!;
      if (twin === undefined) throw new UsageError("--chain --farm F registers a farm: give its owner with --twin T (KEYFILE is that twin's key)");
      const name = (values.name as string | undefined) ?? "";
      const signer = await loadKeyFile(keyFile);
      const r = await withNats(values, io, async (nc, subjects) => {
        const client = new ChainClient(nc, subjects);
        const res = await client.registerFarm(signer, { farmId: farm, twinId: twin, name });
        // without --name the farm keeps the name it has: show it
        return { res, name: res.ok && name === "" ? ((await client.farm(farm))?.name ?? "") : name };
      });
      if (!r.res.ok) {
        io.err(`capacity-agent registry: the chain refused: [${r.res.code}] ${r.res.message}`);
        return EXIT_FAIL;
      }
      io.out(JSON.stringify({ farm, twin, name: r.name }));
      return EXIT_OK;
    }
    if ((twin === undefined) === (node === undefined)) throw new UsageError("give exactly one of --twin ID or --node ID");
    if (values.chain) {
      if (values.file !== undefined) throw new UsageError("give --file REGISTRY or --chain, not both");
      if (twin === undefined) throw new UsageError("--chain registers twins; a node registers itself when its agent starts");
      const signer = await loadKeyFile(keyFile);
      const r = await withNats(values, io, (nc, subjects) => new ChainClient(nc, subjects).registerTwin(signer, twin));
      if (!r.ok) {
        io.err(`capacity-agent registry: the chain refused: [${r.code}] ${r.message}`);
        return EXIT_FAIL;
      }
      io.out(JSON.stringify({ twin, address: signer.address, publicKey: "0x" + Buffer.from(signer.publicKey).toString("hex"), type: signer.scheme }));
      return EXIT_OK;
    }
    const file = req(values, "file");
    const kf = JSON.parse(fs.readFileSync(keyFile, "utf8")) as KeyFile;
    if (twin !== undefined) {
      upsertRegistryFile(file, { kind: "twin", id: twin, publicKey: kf.publicKey, scheme: kf.type });
      io.out(JSON.stringify({ twin, address: kf.address, publicKey: kf.publicKey, type: kf.type }));
    } else {
      const farm = intFlag(values, "farm", { required: true, max: 0xffffffff })!;
      const nodeTwin = intFlag(values, "node-twin", { max: 0xffffffff }) ?? node!;
      upsertRegistryFile(file, { kind: "node", id: node!, farmId: farm, twinId: nodeTwin, publicKey: kf.publicKey, scheme: kf.type });
      io.out(JSON.stringify({ node, farm, address: kf.address, publicKey: kf.publicKey, type: kf.type }));
    }
    return EXIT_OK;
  },
};
