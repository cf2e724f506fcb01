import { connectTfchain } from "./connect";
import { TfchainError } from "./errors";
import { decodeAddress, encodeAddress } from "@polkadot/util-crypto";

/** 1 TFT = 10^7 units (tfchain's balance has 7 decimals). */
export const PLANCK_PER_TFT = 10_000_000n;
/** What the dev chain gives each dev account and `fund` gives by default: 1,000,000 TFT. */
export const DEV_FUND_PLANCK = 1_000_000n * PLANCK_PER_TFT;
/** The usual Substrate dev accounts, funded by scripts/tfchain-dev (sr25519 and ed25519). */
export const DEV_ACCOUNT_URIS = ["//Alice", "//Bob", "//Charlie", "//Dave", "//Eve", "//Ferdie"] as const;

/**
 * Give accounts a free balance on a dev chain (chopsticks' dev_setStorage on System.Account;
 * a real node refuses the RPC). Returns each account's free balance read back.
 */
export async function fundAccounts(url: string, addresses: string[], planck: bigint, timeoutMs = 15_000): Promise<{ address: string; free: bigint }[]> {
  const normalized = addresses.map((a) => {
    try {
      return encodeAddress(decodeAddress(a), 42);
    } catch {
      throw new TfchainError("invalid_options", `${JSON.stringify(a)} is not an SS58 address`, { field: "address" });
    }
  });
  const api = await connectTfchain(url, timeoutMs);
  try {
    const storage = { System: { Account: normalized.map((a) => [[a], { providers: 1, data: { free: planck.toString() } }]) } };
    try {
      await api.rpc("dev_setStorage" as never, storage as never);
    } catch (err) {
      throw new TfchainError("unsupported_runtime", `${url} does not accept dev_setStorage (${(err as Error).message}): fund works on a dev chain started by scripts/tfchain-dev only`, { cause: err });
    }
    const out: { address: string; free: bigint }[] = [];
    for (const a of normalized) {
      const info = (await api.query.system.account(a)) as unknown as { data: { free: { toBigInt(): bigint } } };
      out.push({ address: a, free: info.data.free.toBigInt() });
    }
    return out;
  } finally {
    await api.disconnect();
  }
}
