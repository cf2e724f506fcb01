import * as fs from "node:fs";
import { upsertRegistryFile } from "../../registry/file";
import { EXIT_OK, UsageError, intFlag, req, type Command } from "../framework";
import type { KeyFile } from "../../identity/keys";

export const registryCommand: Command = {
  name: "registry",
  summary: "add a twin or node key to a JSON registry file",
  help: `usage: capacity-agent registry add --file REGISTRY --twin ID --key KEYFILE
       capacity-agent registry add --file REGISTRY --node ID --farm F [--node-twin T] --key KEYFILE

Adds (or replaces) an entry binding an id to the public key of KEYFILE (only the public key is
copied). Agents re-read the file when it changes.`,
  options: { file: { type: "string" }, twin: { type: "string" }, node: { type: "string" }, farm: { type: "string" }, "node-twin": { type: "string" }, key: { type: "string" } },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length !== 1 || positionals[0] !== "add") throw new UsageError(`expected "registry add"`);
    const file = req(values, "file");
    const kf = JSON.parse(fs.readFileSync(req(values, "key"), "utf8")) as KeyFile;
    const twin = intFlag(values, "twin", { max: 0xffffffff });
    const node = intFlag(values, "node", { max: 0xffffffff });
    if ((twin === undefined) === (node === undefined)) throw new UsageError("give exactly one of --twin ID or --node ID");
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
