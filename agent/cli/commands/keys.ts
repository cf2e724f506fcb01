import { createKeyFile, SCHEMES, type SchemeName } from "../../identity/keys";
import { EXIT_OK, UsageError, req, type Command } from "../framework";

export const keysCommand: Command = {
  name: "keys",
  help: `usage: capacity-agent keys new --out FILE [--type ed25519|sr25519]

Writes a new key file (mode 0600; an existing file is never overwritten) and prints
{"address","publicKey","type"} as JSON (publicKey as 0x hex, address as SS58 with prefix 42).
  --out FILE     where to write the key file (required)
  --type TYPE    ed25519 (default) or sr25519`,
  options: { out: { type: "string" }, type: { type: "string" } },
  positionals: true,
  async run({ values, positionals }, io) {
    if (positionals.length !== 1 || positionals[0] !== "new") throw new UsageError(`expected "keys new", got "keys ${positionals.join(" ")}"`);
    const type = (values.type as string | undefined) ?? "ed25519";
    if (!(SCHEMES as readonly string[]).includes(type)) throw new UsageError(`--type must be ed25519 or sr25519, got ${JSON.stringify(type)}`);
    const kf = await createKeyFile(req(values, "out"), type as SchemeName);
    io.out(JSON.stringify({ address: kf.address, publicKey: kf.publicKey, type: kf.type }));
    return EXIT_OK;
  },
};
