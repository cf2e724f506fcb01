/**
 * The find responder answers exactly when the node would admit a deploy of what is asked: a real
 * Ledger over a real store on disk, real keys, a MemoryBus; each case says whether the node
 * answers, and the admission core's decision for a new deployment of the same units must agree.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { admitDeploy } from "../../agent/admission/admit";
import { Ledger } from "../../agent/admission/ledger";
import { parseDeployment, deploymentUnits } from "../../agent/admission/spec";
import { MemoryBus } from "../../agent/bus/memory";
import { Subjects } from "../../agent/bus/subjects";
import { DEFAULT_POLICY } from "../../agent/capacity/model";
import { GiB, zeroUnits, type Units } from "../../agent/capacity/units";
import { Gossip } from "../../agent/gossip/gossip";
import { GOSSIP_DEFAULTS } from "../../agent/gossip/options";
import { decodeAnnouncementPayload, encodeFindRequest, type FindQuery } from "../../agent/gossip/wire";
import { cryptoReady, signerFromSeed } from "../../agent/identity/keys";
import { silentLogger } from "../../agent/log/logger";
import { Store } from "../../agent/store/store";
import { decode } from "../../agent/wire/codec";

const T = 1_700_000_000_000;
const TOTAL: Units = { cru: 4, mru: 16 * GiB, sru: 105 * GiB, hru: 0, ipv4u: 1, gpu: 1 };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function node(p: { power: "up" | "standby"; rented: boolean }) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "gossip-find-"));
  dirs.push(d);
  const store = Store.open(d);
  const ledger = new Ledger({ power: p.power, rented: p.rented, policy: DEFAULT_POLICY }, { store, logger: silentLogger(), now: () => T, metrics: null }, TOTAL);
  const gossip = new Gossip(
    { ...GOSSIP_DEFAULTS, nodeId: 5, farmId: 2, twinId: 5 },
    { bus: new MemoryBus(), subjects: new Subjects(), ledger, store, registry: { twin: async () => undefined, node: async () => undefined }, signer: signerFromSeed("ed25519", crypto.randomBytes(32)), logger: silentLogger(), metrics: null, now: () => T },
  );
  return { store, ledger, gossip };
}

/** A deployment of one VM with `cpu` cores, `memory` and `rootfs`, and GPUs when asked. */
function deployment(p: { cpu: number; memory: string; rootfs: string; gpus?: number }) {
  const r = parseDeployment({ id: 100, twinId: 7, version: 1, workloads: [{ name: "vm", type: "zmachine", cpu: p.cpu, memory: p.memory, rootfs: p.rootfs, ...(p.gpus ? { gpus: Array.from({ length: p.gpus }, (_, i) => `gpu${i}`) } : {}) }] });
  if (!r.ok) throw new Error(r.refusal.message);
  return { spec: r.value, units: deploymentUnits(r.value), hash: "h" };
}

beforeAll(() => cryptoReady());

describe("Gossip.onFind answers exactly when a deploy of the asked units would be admitted", () => {
  const small = { cpu: 1, memory: "1GiB", rootfs: "1GiB" };
  test.each([
    // [what, node, deployment asked about, find flags, answers, the admission code when it would not]
    ["an up node with room", { power: "up", rented: false }, small, {}, true, undefined],
    ["more CPU than reservable (4 x 2)", { power: "up", rented: false }, { ...small, cpu: 9 }, {}, false, "insufficient_capacity"],
    ["exactly the reservable CPU", { power: "up", rented: false }, { ...small, cpu: 8 }, {}, true, undefined],
    ["more memory than reservable (16 - 2 GiB)", { power: "up", rented: false }, { ...small, memory: "15GiB" }, {}, false, "insufficient_capacity"],
    ["a GPU on a node not rented", { power: "up", rented: false }, { ...small, gpus: 1 }, {}, false, "gpu_requires_rent"],
    ["a GPU on a rented node", { power: "up", rented: true }, { ...small, gpus: 1 }, {}, true, undefined],
    ["two GPUs on a rented node with one", { power: "up", rented: true }, { ...small, gpus: 2 }, {}, false, "insufficient_capacity"],
    ["a node in standby", { power: "standby", rented: false }, small, {}, false, "node_standby"],
    ["a node in standby, asked wakeable", { power: "standby", rented: false }, small, { wakeable: true }, true, "node_standby"],
    ["a node in standby without room, asked wakeable", { power: "standby", rented: false }, { ...small, cpu: 9 }, { wakeable: true }, false, "node_standby"],
    ["another farm", { power: "up", rented: false }, small, { farmId: 3 }, false, undefined],
  ] as const)("%s", (_what, n, d, flags, answers, code) => {
    const { store, ledger, gossip } = node(n);
    try {
      const input = deployment(d);
      const q: FindQuery = { want: input.units, farmId: 0, limit: 0, ...flags };
      const reply = gossip.onFind(encodeFindRequest(q));
      expect(reply !== null).toBe(answers);
      if (reply) expect(decodeAnnouncementPayload(decode("Signed", reply).payload, 4096)).toMatchObject({ nodeId: 5, farmId: 2, power: n.power });
      const decision = admitDeploy(input, ledger.state(), T);
      expect(decision.ok ? undefined : decision.refusal.code).toBe(code);
    } finally {
      gossip.close();
      store.close();
    }
  });

  test("the answer follows the ledger: the last room taken, the node falls silent", async () => {
    const { store, ledger, gossip } = node({ power: "up", rented: false });
    try {
      const want = { ...zeroUnits(), cru: 8 };
      expect(gossip.onFind(encodeFindRequest({ want, farmId: 0, limit: 0 }))).not.toBeNull();
      const taken = ledger.deploy(deployment({ cpu: 1, memory: "1GiB", rootfs: "1GiB" }), new Uint8Array([1]));
      expect(taken.ok).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(gossip.onFind(encodeFindRequest({ want, farmId: 0, limit: 0 }))).toBeNull();
      expect(gossip.onFind(encodeFindRequest({ want: { ...want, cru: 7 }, farmId: 0, limit: 0 }))).not.toBeNull();
    } finally {
      gossip.close();
      store.close();
    }
  });
});
