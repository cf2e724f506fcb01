import { debtSince, graceDue, graceEnd, markExpired, mergeGrace, TFCHAIN_GRACE_MS, type TwinGrace } from "../../agent/billing/grace";

describe("grace on the chain: since when a twin is in debt", () => {
  test.each([
    // previous since, balance after the change, now -> since
    { name: "enters debt: grace starts now", prev: undefined, balance: -1n, now: 1000, want: 1000 },
    { name: "stays in debt: the first start holds (a second bill does not extend it)", prev: 1000, balance: -50n, now: 9000, want: 1000 },
    { name: "funded back to exactly zero: leaves grace", prev: 1000, balance: 0n, now: 9000, want: undefined },
    { name: "funded above zero: leaves grace", prev: 1000, balance: 7n, now: 9000, want: undefined },
    { name: "never in debt", prev: undefined, balance: 3n, now: 9000, want: undefined },
  ])("$name", ({ prev, balance, now, want }) => {
    expect(debtSince(prev, balance, now)).toBe(want);
  });

  test("a twin that leaves and enters debt again gets a new grace", () => {
    let since = debtSince(undefined, -5n, 100);
    since = debtSince(since, 10n, 200);
    since = debtSince(since, -1n, 300);
    expect(since).toBe(300);
    expect(graceEnd(since!, 2500)).toBe(2800);
  });

  test("the default is tfchain's 14 days", () => {
    expect(TFCHAIN_GRACE_MS).toBe(1_209_600_000);
  });
});

describe("grace on the node", () => {
  const g = (twinId: number, graceEndMs: number, expired = false): TwinGrace => ({ twinId, graceEndMs, expired });

  test("expiry is due once the grace end is reached, and only once", () => {
    const both = new Set([3, 7]);
    let list = mergeGrace([], [{ twinId: 7, graceEndMs: 5000 }, { twinId: 3, graceEndMs: 9000 }], both);
    expect(list).toEqual([g(3, 9000), g(7, 5000)]);
    expect(graceDue(list, 4999)).toEqual([]);
    expect(graceDue(list, 5000)).toEqual([7]);
    list = markExpired(list, 7);
    expect(graceDue(list, 6000)).toEqual([]);
    // the chain tells the same grace again (the next proof): still done
    list = mergeGrace(list, [{ twinId: 7, graceEndMs: 5000 }, { twinId: 3, graceEndMs: 9000 }], both);
    expect(graceDue(list, 10_000)).toEqual([3]);
    // a later proof without twin 7's records (its deployments are gone) says nothing of it: it stays, expired
    list = mergeGrace(list, [{ twinId: 3, graceEndMs: 9000 }], new Set([3]));
    expect(list.find((x) => x.twinId === 7)).toEqual(g(7, 5000, true));
  });

  test("a twin funded in time leaves the list and is never due", () => {
    let list = mergeGrace([], [{ twinId: 7, graceEndMs: 5000 }], new Set([7]));
    list = mergeGrace(list, [], new Set([7]));
    expect(list).toEqual([]);
    expect(graceDue(list, 1e12)).toEqual([]);
  });

  test("a new grace end after an expiry is a new grace", () => {
    const list = mergeGrace([g(7, 5000, true)], [{ twinId: 7, graceEndMs: 8000 }], new Set([7]));
    expect(list).toEqual([g(7, 8000)]);
    expect(graceDue(list, 8000)).toEqual([7]);
  });

  test("a grace end of 0 (a chain that does not tell one) never deletes", () => {
    expect(graceDue(mergeGrace([], [{ twinId: 4, graceEndMs: 0 }], new Set([4])), 1e12)).toEqual([]);
  });
});
