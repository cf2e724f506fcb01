import {
  BLAKE2_128_CONCAT_U64_BYTES,
  CONTRACT_BILL_BYTES,
  CONTRACT_BILLING_INFORMATION_BYTES,
  CONTRACT_MAP_KEY_BYTES,
  CONTRACT_PAYMENT_STATE_BYTES,
  CONTRACT_RESOURCES_BYTES,
  EVENT_RECORD_OVERHEAD,
  EXTRINSIC_FIXED_BYTES,
  MODEL_ITEMS,
  NODE_UPTIME_REPORTED_FIELD_BYTES,
  NRU_CONSUMPTION_BYTES,
  SIGNED_EXTRINSIC_OVERHEAD,
  STORAGE_PREFIX_BYTES,
  SYSTEM_EVENT_BYTES_PER_EXTRINSIC,
  compactSize,
  palletEstimate,
  signedExtrinsicBytes,
  tfchainModel,
  type ModelItem,
  type ModelItemName,
} from "../../scripts/footprint/model";

// Pure arithmetic: no store, no network, no files.

type Numbers = Omit<ModelItem, "call">;
const FIELDS = ["calls", "extrinsicBytes", "stateWrites", "storageBytes", "events", "eventBytes"] as const;
const numbers = (it: Numbers): Numbers => Object.fromEntries(FIELDS.map((f) => [f, it[f]])) as unknown as Numbers;
const minus = (a: Numbers, b: Numbers): Numbers => Object.fromEntries(FIELDS.map((f) => [f, a[f] - b[f]])) as unknown as Numbers;

describe("the stated constants", () => {
  test("a signed extrinsic costs 110 bytes: length 2 + version 1 + MultiAddress 33 + MultiSignature 65 + era 2 + nonce 4 + tip 1 + call index 2", () => {
    expect(EXTRINSIC_FIXED_BYTES).toBe(1 + 33 + 65 + 2 + 4 + 1 + 2);
    expect(SIGNED_EXTRINSIC_OVERHEAD).toBe(110);
  });

  test("system events per extrinsic: ExtrinsicSuccess (8 + 12) + TransactionFeePaid (8 + 32 + 16 + 16) = 92; record overhead 5 + 2 + 1", () => {
    expect(EVENT_RECORD_OVERHEAD).toBe(5 + 2 + 1);
    expect(SYSTEM_EVENT_BYTES_PER_EXTRINSIC).toBe(8 + 12 + (8 + 32 + 16 + 16));
  });

  test("type sizes are the sums of their fields", () => {
    expect(CONTRACT_RESOURCES_BYTES).toBe(8 + 4 * 8);
    expect(NRU_CONSUMPTION_BYTES).toBe(4 * 8);
    expect(CONTRACT_BILLING_INFORMATION_BYTES).toBe(3 * 8);
    expect(CONTRACT_PAYMENT_STATE_BYTES).toBe(4 * 16 + 8 + 2);
    expect(CONTRACT_BILL_BYTES).toBe(8 + 8 + 1 + 16);
    expect(NODE_UPTIME_REPORTED_FIELD_BYTES).toBe(4 + 8 + 8);
    expect(CONTRACT_MAP_KEY_BYTES).toBe(STORAGE_PREFIX_BYTES + BLAKE2_128_CONCAT_U64_BYTES);
    expect(CONTRACT_MAP_KEY_BYTES).toBe(32 + 16 + 8);
  });
});

describe("compactSize", () => {
  test.each([
    [0, 1],
    [63, 1],
    [64, 2],
    [16383, 2],
    [16384, 4],
    [2 ** 30 - 1, 4],
    [2 ** 30, 5],
    [2 ** 32 - 1, 5],
    [2 ** 32, 6],
  ])("Compact(%d) takes %d bytes", (n, bytes) => {
    expect(compactSize(n)).toBe(bytes);
  });

  test.each([-1, 1.5, Number.NaN])("refuses %p", (n) => {
    expect(() => compactSize(n)).toThrow(RangeError);
  });
});

describe("signedExtrinsicBytes", () => {
  test.each([0, 8, 16, 41, 3202, 16383 - 108])("arguments of %d bytes: 110 + arguments (a 2-byte length prefix)", (args) => {
    expect(signedExtrinsicBytes(args)).toBe(110 + args);
  });

  test("the length prefix grows to 4 bytes past 16383 bytes", () => {
    expect(signedExtrinsicBytes(16384 - 108)).toBe(4 + 16384);
  });
});

describe("tfchainModel, D = 1, computed by hand from the stated parts", () => {
  const m = tfchainModel(1);
  test.each<[ModelItemName, Numbers]>([
    // 1 call of 110 + (1 + 40); 1 entry written (56 + 40); 1 UpdatedUsedResources (8 + 40) + 92 of system events
    ["resources", { calls: 1, extrinsicBytes: 151, stateWrites: 1, storageBytes: 96, events: 3, eventBytes: 140 }],
    // 24 calls of 110 + (1 + 32); 24 billing information writes (56 + 24); 24 x (NruConsumptionReportReceived 8 + 32, + 92)
    ["nru", { calls: 24, extrinsicBytes: 24 * 143, stateWrites: 24, storageBytes: 24 * 80, events: 72, eventBytes: 24 * 132 }],
    // 36 calls of 110 + 16; no state; 36 x (NodeUptimeReported 8 + 20, + 92)
    ["uptime", { calls: 36, extrinsicBytes: 36 * 126, stateWrites: 0, storageBytes: 0, events: 108, eventBytes: 36 * 120 }],
    // 24 bills of 110 + 8; 2 writes each: (56 + 24) + (56 + 74); 24 x (ContractBilled 8 + 33, + 92)
    ["billing", { calls: 24, extrinsicBytes: 24 * 118, stateWrites: 48, storageBytes: 24 * 210, events: 72, eventBytes: 24 * 133 }],
  ])("%s", (name, expected) => {
    expect(numbers(m.items[name])).toEqual(expected);
  });

  test("totals are the sums of the items; stored = extrinsics + state, emitted = events", () => {
    expect(m.total).toEqual({
      calls: 1 + 24 + 36 + 24,
      extrinsicBytes: 151 + 3432 + 4536 + 2832,
      stateWrites: 1 + 24 + 0 + 48,
      storageBytes: 96 + 1920 + 0 + 5040,
      events: 3 + 72 + 108 + 72,
      eventBytes: 140 + 3168 + 4320 + 3192,
      stored: 10951 + 7056,
      emitted: 10820,
    });
  });
});

describe("tfchainModel: every item is the sum of its stated parts", () => {
  test.each([1, 2, 7, 20, 63, 64, 100, 400])("D = %d", (D) => {
    const m = tfchainModel(D);
    const vec = compactSize(D);
    expect(numbers(m.items.resources)).toEqual({
      calls: 1,
      extrinsicBytes: signedExtrinsicBytes(vec + D * CONTRACT_RESOURCES_BYTES),
      stateWrites: D,
      storageBytes: D * (CONTRACT_MAP_KEY_BYTES + CONTRACT_RESOURCES_BYTES),
      events: 2 + D,
      eventBytes: SYSTEM_EVENT_BYTES_PER_EXTRINSIC + D * (EVENT_RECORD_OVERHEAD + CONTRACT_RESOURCES_BYTES),
    });
    expect(numbers(m.items.nru)).toEqual({
      calls: 24,
      extrinsicBytes: 24 * signedExtrinsicBytes(vec + D * NRU_CONSUMPTION_BYTES),
      stateWrites: 24 * D,
      storageBytes: 24 * D * (CONTRACT_MAP_KEY_BYTES + CONTRACT_BILLING_INFORMATION_BYTES),
      events: 24 * (2 + D),
      eventBytes: 24 * (SYSTEM_EVENT_BYTES_PER_EXTRINSIC + D * (EVENT_RECORD_OVERHEAD + NRU_CONSUMPTION_BYTES)),
    });
    expect(numbers(m.items.uptime)).toEqual(numbers(tfchainModel(1).items.uptime));
    expect(numbers(m.items.billing)).toEqual({
      calls: 24 * D,
      extrinsicBytes: 24 * D * signedExtrinsicBytes(8),
      stateWrites: 48 * D,
      storageBytes: 24 * D * (2 * CONTRACT_MAP_KEY_BYTES + CONTRACT_BILLING_INFORMATION_BYTES + CONTRACT_PAYMENT_STATE_BYTES),
      events: 24 * D * 3,
      eventBytes: 24 * D * (SYSTEM_EVENT_BYTES_PER_EXTRINSIC + EVENT_RECORD_OVERHEAD + CONTRACT_BILL_BYTES),
    });
    const sum = (f: (typeof FIELDS)[number]): number => MODEL_ITEMS.reduce((s, n) => s + m.items[n][f], 0);
    for (const f of FIELDS) expect(m.total[f]).toBe(sum(f));
    expect(m.total.stored).toBe(m.total.extrinsicBytes + m.total.storageBytes);
    expect(m.total.emitted).toBe(m.total.eventBytes);
  });
});

/** What one more contract adds per node-day (where no compact prefix changes width). */
const PER_CONTRACT: Record<ModelItemName, Numbers> = {
  resources: { calls: 0, extrinsicBytes: 40, stateWrites: 1, storageBytes: 56 + 40, events: 1, eventBytes: 8 + 40 },
  nru: { calls: 0, extrinsicBytes: 24 * 32, stateWrites: 24, storageBytes: 24 * (56 + 24), events: 24, eventBytes: 24 * (8 + 32) },
  uptime: { calls: 0, extrinsicBytes: 0, stateWrites: 0, storageBytes: 0, events: 0, eventBytes: 0 },
  billing: { calls: 24, extrinsicBytes: 24 * 118, stateWrites: 48, storageBytes: 24 * (56 + 24 + 56 + 74), events: 72, eventBytes: 24 * (92 + 8 + 33) },
};

describe("tfchainModel: D and D + 1 differ by exactly the per-contract parts", () => {
  test.each([1, 2, 19, 20, 62, 64, 99, 100, 399])("D = %d -> D + 1", (D) => {
    const a = tfchainModel(D);
    const b = tfchainModel(D + 1);
    for (const name of MODEL_ITEMS) expect(minus(numbers(b.items[name]), numbers(a.items[name]))).toEqual(PER_CONTRACT[name]);
  });

  test("63 -> 64: the Vec length prefix grows by one byte in each report (1 resources + 24 NRU calls)", () => {
    const a = tfchainModel(63);
    const b = tfchainModel(64);
    expect(b.items.resources.extrinsicBytes - a.items.resources.extrinsicBytes).toBe(PER_CONTRACT.resources.extrinsicBytes + 1);
    expect(b.items.nru.extrinsicBytes - a.items.nru.extrinsicBytes).toBe(PER_CONTRACT.nru.extrinsicBytes + 24);
  });
});

describe("tfchainModel grows linearly in D", () => {
  const slope = (f: "stored" | "emitted"): number => MODEL_ITEMS.reduce((s, n) => s + (f === "stored" ? PER_CONTRACT[n].extrinsicBytes + PER_CONTRACT[n].storageBytes : PER_CONTRACT[n].eventBytes), 0);
  const one = tfchainModel(1).total;

  test("the slopes: stored 2,832 + 5,040 + 40 + 96 + 768 + 1,920 bytes per contract, emitted 3,192 + 48 + 960", () => {
    expect(slope("stored")).toBe(24 * 118 + 24 * 210 + 40 + 96 + 24 * 32 + 24 * 80);
    expect(slope("emitted")).toBe(24 * 133 + 48 + 24 * 40);
  });

  test.each([1, 2, 3, 10, 20, 50, 63, 64, 100, 200, 400])("D = %d: total = total(1) + (D - 1) x slope (+ 25 bytes of wider Vec prefixes from D = 64)", (D) => {
    const t = tfchainModel(D).total;
    const prefix = D >= 64 ? 1 + 24 : 0;
    expect(t.stored).toBe(one.stored + (D - 1) * slope("stored") + prefix);
    expect(t.emitted).toBe(one.emitted + (D - 1) * slope("emitted"));
  });

  test("the fixed part (uptime) does not depend on D; at D = 0 it is all there is", () => {
    const zero = tfchainModel(0);
    for (const name of ["resources", "nru", "billing"] as const) expect(numbers(zero.items[name])).toEqual({ calls: 0, extrinsicBytes: 0, stateWrites: 0, storageBytes: 0, events: 0, eventBytes: 0 });
    expect(zero.total.stored).toBe(36 * 126);
    expect(zero.total.emitted).toBe(36 * 120);
  });
});

describe("tfchainModel options", () => {
  test.each([0, 1, 3])("resourceReportsPerDay = %d scales the resources item and nothing else", (r) => {
    const base = tfchainModel(20);
    const m = tfchainModel(20, { resourceReportsPerDay: r });
    for (const f of FIELDS) expect(m.items.resources[f]).toBe(r * base.items.resources[f]);
    for (const name of ["nru", "uptime", "billing"] as const) expect(m.items[name]).toEqual(base.items[name]);
    expect(m.options.resourceReportsPerDay).toBe(r);
  });

  test("billsPerContractPerDay, nruReportsPerDay and uptimeReportsPerDay scale their items", () => {
    const base = tfchainModel(5);
    const m = tfchainModel(5, { billsPerContractPerDay: 48, nruReportsPerDay: 12, uptimeReportsPerDay: 72 });
    for (const f of FIELDS) {
      expect(m.items.billing[f]).toBe(2 * base.items.billing[f]);
      expect(2 * m.items.nru[f]).toBe(base.items.nru[f]);
      expect(m.items.uptime[f]).toBe(2 * base.items.uptime[f]);
    }
  });

  test.each([-1, 1.5, Number.NaN])("refuses D = %p", (D) => {
    expect(() => tfchainModel(D)).toThrow(RangeError);
  });

  test("refuses a negative frequency", () => {
    expect(() => tfchainModel(1, { billsPerContractPerDay: -1 })).toThrow(RangeError);
  });
});

describe("palletEstimate", () => {
  test("one signed extrinsic per proof (overhead + Vec<u8> of the envelope), system events per proof, measured state and events", () => {
    const p = palletEstimate({ envelopeBytes: [300, 301], stateBytes: 1000, eventBytes: 400 });
    expect(p).toEqual({
      proofs: 2,
      extrinsicBytes: 110 + 2 + 300 + (110 + 2 + 301),
      storageBytes: 1000,
      eventBytes: 400 + 2 * 92,
      stored: 110 + 2 + 300 + (110 + 2 + 301) + 1000,
      emitted: 400 + 2 * 92,
    });
  });

  test("a measurement over several days is brought back to one day", () => {
    const one = palletEstimate({ envelopeBytes: [300, 300], stateBytes: 1000, eventBytes: 400 });
    const two = palletEstimate({ envelopeBytes: [300, 300, 300, 300], stateBytes: 2000, eventBytes: 800, days: 2 });
    expect(two).toEqual(one);
  });
});
