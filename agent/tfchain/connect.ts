import { ApiPromise, WsProvider } from "@polkadot/api";
import { TfchainError } from "./errors";
import { tfchainTypesBundle } from "./types";

/**
 * Connect to a tfchain node's RPC. The legacy type definitions apply to old runtimes only (by
 * spec_version); newer runtimes describe their types in their metadata. Throws TfchainError
 * `chain_unavailable` when nothing answers within `timeoutMs`.
 */
export async function connectTfchain(url: string, timeoutMs: number): Promise<ApiPromise> {
  // reconnects by itself after a drop (long-running agent and verifier); a URL that never answers
  // fails after timeoutMs instead of retrying forever
  const provider = new WsProvider(url, 2500, undefined, timeoutMs);
  const timers: NodeJS.Timeout[] = [];
  const within = <T>(p: Promise<T>, what: string): Promise<T> =>
    Promise.race([p, new Promise<never>((_, reject) => timers.push(setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs)))]);
  // the first connection error ends the attempt (instead of waiting out the timeout)
  const failed = new Promise<never>((_, reject) => provider.on("error", (e: unknown) => reject(new Error(`connection failed${e instanceof Error && e.message ? `: ${e.message}` : ""}`))));
  failed.catch(() => undefined);
  try {
    await within(Promise.race([provider.isReady, failed]), "answer");
    return await within(ApiPromise.create({ provider, typesBundle: tfchainTypesBundle(), noInitWarn: true, throwOnConnect: true }), "metadata");
  } catch (err) {
    await provider.disconnect().catch(() => undefined);
    throw new TfchainError("chain_unavailable", `cannot reach tfchain at ${url}: ${(err as Error).message}; check the URL and that the node is running`, { cause: err });
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
