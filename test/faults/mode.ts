/** Fault suite mode: FAULT_MODE=full (by hand, scripts/fault-suite --full) or quick (CI, the default). */
export type FaultMode = "quick" | "full";

export function faultMode(): FaultMode {
  return process.env.FAULT_MODE === "full" ? "full" : "quick";
}
