import { loadKeyFile, type Signer } from "../../identity/keys";
import { silentLogger } from "../../log/logger";
import { TfchainBackend } from "../../tfchain/backend";
import { TfchainError } from "../../tfchain/errors";
import { parseChainUrl } from "../../tfchain/options";
import { JSON_OPTION, UsageError, req } from "../framework";

/** Flags every tfchain command takes. */
export const TFCHAIN_OPTIONS = { "chain-url": { type: "string" as const }, key: { type: "string" as const }, ...JSON_OPTION };

export const TFCHAIN_FLAGS_HELP = `  --chain-url URL  ws:// or wss:// URL of a tfchain node (required; e.g. the one scripts/tfchain-dev prints)
  --key FILE       the account's key file (capacity-agent keys new; required)
  --json           print one JSON object`;

/** `--chain-url` (required): a ws:// or wss:// URL, else a usage error. */
export function chainUrlFlag(values: Record<string, unknown>): string {
  try {
    return parseChainUrl(req(values, "chain-url"), "--chain-url");
  } catch (err) {
    if (err instanceof TfchainError) throw new UsageError(err.message);
    throw err;
  }
}

/** Connect with the key of `--key` to the chain at `--chain-url`, run `fn`, always disconnect. */
export async function withTfchain<T>(values: Record<string, unknown>, fn: (backend: TfchainBackend, signer: Signer) => Promise<T>): Promise<T> {
  const url = chainUrlFlag(values);
  const signer = await loadKeyFile(req(values, "key"));
  const backend = await TfchainBackend.connect({ url }, { logger: silentLogger() });
  try {
    return await fn(backend, signer);
  } finally {
    await backend.close();
  }
}
