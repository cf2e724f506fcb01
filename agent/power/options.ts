import { PowerError } from "./errors";

/**
 * The numbers of the power policy (config section `power.*`), farmerbot's defaults. Durations are
 * ms here; the config file gives them in seconds so integration tests can use a few seconds.
 */
export interface PowerPolicyOptions {
  /** wake nodes when farm usage of any unit is above this share of the online total (default 0.8) */
  wakeThreshold: number;
  /** a node goes to standby only while usage without it stays below this share (default 0.8) */
  standbyThreshold: number;
  /** no node changes state again sooner than this after its last change, ms (default 30 min) */
  minStateMs: number;
  /** no standby within this long after capacity was claimed on the node, ms (default 30 min) */
  claimQuietMs: number;
  /** every standby node wakes once per this period, at its own offset (default 1 day) */
  periodicWakeMs: number;
  /** random liveness wake-ups per node per 30 days (default 10, as farmerbot) */
  randomWakesPerMonth: number;
  /** how often each node applies the policy, ms (default 5 min) */
  checkMs: number;
  /**
   * agreement window, ms (default 60 s): a node announces its standby intent and goes only when no
   * objection and no lower-id intent came within it. Must be at least twice the worst message delay.
   */
  windowMs: number;
}

export const POWER_DEFAULTS: PowerPolicyOptions = {
  wakeThreshold: 0.8,
  standbyThreshold: 0.8,
  minStateMs: 30 * 60_000,
  claimQuietMs: 30 * 60_000,
  periodicWakeMs: 24 * 3600_000,
  randomWakesPerMonth: 10,
  checkMs: 5 * 60_000,
  windowMs: 60_000,
};

function bad(field: string, message: string): never {
  throw new PowerError("invalid_options", `${field}: ${message}`, { field });
}

/** Check every option; throws PowerError("invalid_options") naming the bad field (`power.<name>`). */
export function parsePowerOptions(raw: Partial<PowerPolicyOptions>): PowerPolicyOptions {
  const o: PowerPolicyOptions = { ...POWER_DEFAULTS, ...raw };
  for (const f of ["wakeThreshold", "standbyThreshold"] as const) {
    if (typeof o[f] !== "number" || !(o[f] > 0 && o[f] <= 1)) bad(`power.${f}`, "expected a share above 0 and at most 1, e.g. 0.8");
  }
  if (o.standbyThreshold > o.wakeThreshold) bad("power.standbyThreshold", "must not be above power.wakeThreshold (nodes would wake and sleep in turn)");
  for (const f of ["minStateMs", "claimQuietMs", "periodicWakeMs", "checkMs", "windowMs"] as const) {
    if (typeof o[f] !== "number" || !Number.isInteger(o[f]) || o[f] < 1) bad(`power.${f}`, "expected a positive whole number of ms");
  }
  if (typeof o.randomWakesPerMonth !== "number" || !(o.randomWakesPerMonth >= 0 && o.randomWakesPerMonth <= 1000)) bad("power.randomWakesPerMonth", "expected 0..1000");
  if (o.windowMs >= o.checkMs) bad("power.windowMs", "must be shorter than power.checkMs");
  // a node that just woke knows no outstanding intents; it may not go to standby before they all expired
  if (o.minStateMs <= 2 * o.windowMs) bad("power.minStateMs", "must be more than twice power.windowMs");
  return o;
}
