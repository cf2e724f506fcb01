import { loadKeyFile } from "../../identity/keys";
import { parseSize } from "../../capacity/size";
import { zeroUnits, type Units } from "../../capacity/units";
import { findCapacity, type FindOutcome } from "../../gossip/find";
import { FileRegistry } from "../../registry/file";
import type { Registry } from "../../registry/types";
import { withNats } from "../client";
import { EXIT_FAIL, EXIT_OK, JSON_OPTION, NATS_OPTION, UsageError, intFlag, req, type Io } from "../framework";
import type { Command } from "../framework";
import { unitsLine } from "../format";

export const REGISTRY_ENV = "CAPACITY_AGENT_REGISTRY";

export const NO_REGISTRY_NOTE =
  "note: no registry given (--registry FILE or $CAPACITY_AGENT_REGISTRY): every answer was checked for a valid signature, but not bound to the key the registry gives that node id";

/** The registry that find answers are verified against: --registry FILE, else $CAPACITY_AGENT_REGISTRY, else none. */
export function registryFrom(values: Record<string, unknown>, env: NodeJS.ProcessEnv): Registry | null {
  const file = (values.registry as string | undefined) ?? env[REGISTRY_ENV];
  return file ? new FileRegistry(file) : null;
}

/** --cru N --mru SIZE --sru SIZE --hru SIZE as Units (unset units are 0). */
export function wantedUnits(values: Record<string, unknown>): Units {
  const want = zeroUnits();
  want.cru = intFlag(values, "cru", { min: 0, max: 1_000_000 }) ?? 0;
  for (const u of ["mru", "sru", "hru"] as const) {
    const v = values[u];
    if (v === undefined) continue;
    const r = parseSize(/^\d+$/.test(String(v)) ? Number(v) : v);
    if (!r.ok) throw new UsageError(`--${u}: ${r.refusal}`);
    want[u] = r.value;
  }
  return want;
}

/** A find answer as the public JSON contract prints it. */
export function findJson(outcome: FindOutcome): Array<{ nodeId: number; farmId: number; free: Units }> {
  return outcome.found.map((a) => ({ nodeId: a.nodeId, farmId: a.farmId, free: a.free }));
}

export const FIND_OPTIONS = {
  wake: { type: "boolean" as const },
  key: { type: "string" as const },
  twin: { type: "string" as const },
  cru: { type: "string" as const },
  mru: { type: "string" as const },
  sru: { type: "string" as const },
  hru: { type: "string" as const },
  farm: { type: "string" as const },
  limit: { type: "string" as const },
  registry: { type: "string" as const },
  ...NATS_OPTION,
  ...JSON_OPTION,
};

function printNote(io: Io, outcome: FindOutcome, json: boolean): void {
  if (outcome.boundToRegistry) return;
  // keep stdout pure JSON for scripts; the note goes to stderr there
  (json ? io.err : io.out)(NO_REGISTRY_NOTE);
}

export const findCommand: Command = {
  name: "find",
  help: `usage: capacity-agent find [--cru N] [--mru SIZE] [--sru SIZE] [--hru SIZE] [--farm F] [--limit K]
                           [--registry FILE] [--nats URL] [--json]

Asks tfgrid.v1.capacity.find; every node that can fit the request answers with its signed
capacity announcement. Each answer is verified (signature by the key the registry binds to that
node, fresh timestamp, really fits, in the asked farm); the fitting nodes are printed best first.
Collection ends after K valid answers (--limit), 300 ms after the last answer, or 1.5 s.
Ranking: the node left with the largest share of its tightest requested unit after placing the
request comes first (spreads load); ties: more free memory, then the lower node id.
JSON: [{"nodeId","farmId","free":{"cru","mru","sru","hru","ipv4u","gpu"}}] (memory and storage in
bytes). Exit 0 when a node fits, 1 when none does.
  --cru N           logical CPUs wanted
  --mru SIZE        memory wanted (bytes or e.g. 4GiB); --sru SIZE SSD; --hru SIZE HDD
  --farm F          only nodes of farm F
  --limit K         stop after K fitting answers (the K fastest, ranked)
  --registry FILE   registry to verify answers against (default $CAPACITY_AGENT_REGISTRY); without
                    one, answers are checked for a valid signature but not bound to registered keys
  --wake            when no awake node fits, wake the best node in standby that does (docs/power.md)
                    and wait until it is up; needs --key FILE and --twin T (a registered twin)
  --nats URL        NATS server(s) (default nats://127.0.0.1:4222 or $CAPACITY_AGENT_NATS)
  --json            print JSON`,
  options: FIND_OPTIONS,
  async run({ values }, io) {
    const want = wantedUnits(values);
    const farmId = intFlag(values, "farm", { max: 0xffffffff }) ?? 0;
    const limit = intFlag(values, "limit", { max: 100_000 }) ?? 0;
    const registry = registryFrom(values, io.env);
    const json = values.json === true;
    const wake = values.wake === true;
    const who = wake ? { twinId: intFlag(values, "twin", { required: true, min: 1, max: 0xffffffff })!, signer: await loadKeyFile(req(values, "key")) } : null;
    const outcome = await withNats(values, io, async (bus, subjects) => {
      const o = await findCapacity(bus, subjects, { want, farmId, limit, wakeable: true }, { registry, signal: io.signal });
      if (!who || o.found.length > 0 || o.wakeable.length === 0) return o;
      const sleeper = o.wakeable[0]!;
      io.err(`no awake node fits; waking node ${sleeper.nodeId} (farm ${sleeper.farmId}, in standby)`);
      const { wakeAndWait } = require("../../power/client") as typeof import("../../power/client"); // loaded on use (fast CLI --help)
      const up = await wakeAndWait(bus, subjects, sleeper, who, { registry, timeoutMs: 300_000, log: (l) => io.err(l) });
      if (!up) io.err(`node ${sleeper.nodeId} did not wake within 300 s`);
      return up ? { ...o, found: [sleeper] } : o;
    });
    if (json) {
      io.out(JSON.stringify(findJson(outcome)));
    } else if (outcome.found.length === 0) {
      io.out(`no node has room for: ${unitsLine(want)}${farmId ? ` in farm ${farmId}` : ""}`);
    } else {
      io.out(`${outcome.found.length} node${outcome.found.length === 1 ? "" : "s"} fit, best first:`);
      outcome.found.forEach((a, i) => io.out(`  ${String(i + 1).padStart(2)}. node ${a.nodeId} (farm ${a.farmId})  free ${unitsLine(a.free)}`));
    }
    if (!json && outcome.wakeable.length > 0) {
      io.out(`in standby and would fit (wakeable${outcome.found.length ? "" : "; --wake wakes the first"}): ${outcome.wakeable.map((a) => `node ${a.nodeId} (farm ${a.farmId})`).join(", ")}`);
    }
    printNote(io, outcome, json);
    return outcome.found.length ? EXIT_OK : EXIT_FAIL;
  },
};
