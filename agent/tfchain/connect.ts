import { ApiPromise, WsProvider } from "@polkadot/api";
import { TfchainError } from "./errors";
import { tfchainTypesBundle } from "./types";

/**
 * Connect to a tfchain node's RPC. The legacy type definitions apply to old runtimes only (by
 * spec_version); newer runtimes describe their types in their metadata. Throws TfchainError
 * `chain_unavailable` when nothing answers within `timeoutMs`.
 */
export async function connectTfchain(url: string, timeoutMs: number): Promise<ApiPromise> {
  // no automatic reconnect while connecting: a wrong URL fails fast instead of retrying forever
  const provider = new WsProvider(url, false, undefined, timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      provider.connect(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    await Promise.race([
      provider.isReady,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    const api = await Promise.race([
      ApiPromise.create({ provider, typesBundle: tfchainTypesBundle(), noInitWarn: true, throwOnConnect: true }),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no metadata within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return api;
  } catch (err) {
    await provider.disconnect().catch(() => undefined);
    throw new TfchainError("chain_unavailable", `cannot reach tfchain at ${url}: ${(err as Error).message}; check the URL and that the node is running`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
