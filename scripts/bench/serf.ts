/**
 * The Serf baseline of scripts/sim-grid: N `serf agent` processes on loopback, one tag changed on
 * the first, and the time until every other member's view holds the new value.
 *
 * Members are asked over Serf's own RPC protocol (msgpack over TCP, what the `serf` command speaks),
 * one connection per member from this process: polling with `serf members` costs a process start
 * per look (~10 ms of CPU each, 100 members: the whole machine), and Serf's event handlers and RPC
 * event streams are no clock for this because the agent coalesces member events (CoalescePeriod
 * 3 s, QuiescentPeriod 1 s, set by `serf agent` itself): a handler hears of a tag change a second
 * or more after the member knew it. `members-filtered` reads the member list the gossip updates,
 * the same state `serf members` prints.
 *
 * Serf runs with its LAN defaults (`-profile lan`: gossip every 200 ms to 3 members, a probe every
 * second, push-pull every 30 s), what a user of Serf gets; only its log is quieted (`-log-level err`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as dgram from "node:dgram";
import * as net from "node:net";
import { percentile, type Row } from "./report";

// ---- msgpack: the subset Serf's RPC uses (maps, arrays, strings, bytes, integers, booleans) ----

type Msg = null | boolean | number | string | Uint8Array | Msg[] | { [k: string]: Msg };

function encode(v: Msg, out: number[] = []): number[] {
  const u16 = (n: number) => out.push(n >> 8, n & 0xff);
  const u32 = (n: number) => out.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  if (v === null) out.push(0xc0);
  else if (typeof v === "boolean") out.push(v ? 0xc3 : 0xc2);
  else if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`serf rpc: cannot encode ${v}`);
    if (v < 0x80) out.push(v);
    else (out.push(0xce), u32(v));
  } else if (typeof v === "string") {
    const b = Buffer.from(v, "utf8");
    if (b.length < 32) out.push(0xa0 | b.length);
    else if (b.length < 0x10000) (out.push(0xda), u16(b.length));
    else (out.push(0xdb), u32(b.length));
    for (const x of b) out.push(x);
  } else if (Array.isArray(v)) {
    if (v.length < 16) out.push(0x90 | v.length);
    else (out.push(0xdc), u16(v.length));
    for (const x of v) encode(x, out);
  } else if (v instanceof Uint8Array) {
    (out.push(0xc5), u16(v.length));
    for (const x of v) out.push(x);
  } else {
    const keys = Object.keys(v);
    if (keys.length < 16) out.push(0x80 | keys.length);
    else (out.push(0xde), u16(keys.length));
    for (const k of keys) (encode(k, out), encode(v[k], out));
  }
  return out;
}

/** thrown when the buffer ends inside a value: wait for more bytes */
const INCOMPLETE = new Error("incomplete");

function decode(b: Buffer, at: { i: number }): Msg {
  const need = (n: number) => {
    if (at.i + n > b.length) throw INCOMPLETE;
  };
  const take = (n: number) => (need(n), (at.i += n), at.i - n);
  const str = (n: number) => b.toString("utf8", take(n), at.i);
  const bytes = (n: number) => new Uint8Array(b.subarray(take(n), at.i));
  const arr = (n: number) => Array.from({ length: n }, () => decode(b, at));
  const map = (n: number) => {
    const o: { [k: string]: Msg } = {};
    for (let k = 0; k < n; k++) o[String(decode(b, at))] = decode(b, at);
    return o;
  };
  const t = b[take(1)];
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 0x100;
  if ((t & 0xf0) === 0x80) return map(t & 0x0f);
  if ((t & 0xf0) === 0x90) return arr(t & 0x0f);
  if ((t & 0xe0) === 0xa0) return str(t & 0x1f);
  switch (t) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return bytes(b[take(1)]);
    case 0xc5: return bytes(b.readUInt16BE(take(2)));
    case 0xc6: return bytes(b.readUInt32BE(take(4)));
    case 0xca: return b.readFloatBE(take(4));
    case 0xcb: return b.readDoubleBE(take(8));
    case 0xcc: return b[take(1)];
    case 0xcd: return b.readUInt16BE(take(2));
    case 0xce: return b.readUInt32BE(take(4));
    case 0xcf: return Number(b.readBigUInt64BE(take(8)));
    case 0xd0: return b.readInt8(take(1));
    case 0xd1: return b.readInt16BE(take(2));
    case 0xd2: return b.readInt32BE(take(4));
    case 0xd3: return Number(b.readBigInt64BE(take(8)));
    case 0xd9: return str(b[take(1)]);
    case 0xda: return str(b.readUInt16BE(take(2)));
    case 0xdb: return str(b.readUInt32BE(take(4)));
    case 0xdc: return arr(b.readUInt16BE(take(2)));
    case 0xdd: return arr(b.readUInt32BE(take(4)));
    case 0xde: return map(b.readUInt16BE(take(2)));
    case 0xdf: return map(b.readUInt32BE(take(4)));
  }
  throw new Error(`serf rpc: unsupported msgpack type 0x${t.toString(16)}`);
}

// ---- Serf RPC (https://github.com/hashicorp/serf/blob/master/docs/agent/rpc.html.markdown) ----

export interface SerfMember {
  Name: string;
  Status: string;
  Tags: Record<string, string>;
}

/** One RPC connection to one agent: a request header {Command, Seq}, a body, replies by Seq. */
export class SerfRpc {
  private buf: Buffer = Buffer.alloc(0);
  private seq = 0;
  private readonly waiting = new Map<number, { body: boolean; resolve: (v: Msg) => void; reject: (e: Error) => void }>();
  /** the request whose reply header was read and whose body is next */
  private bodyOf: number | null = null;

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on("data", (d) => this.onData(d));
    sock.on("error", (e) => this.failAll(e));
    sock.on("close", () => this.failAll(new Error("serf rpc: connection closed")));
  }

  static async open(port: number): Promise<SerfRpc> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
    const rpc = new SerfRpc(sock);
    await rpc.call("handshake", { Version: 1 }, false);
    return rpc;
  }

  call(command: string, body: Msg | undefined, replyBody: boolean): Promise<Msg> {
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { body: replyBody, resolve, reject });
      const bytes = encode({ Command: command, Seq: seq });
      if (body !== undefined) encode(body, bytes);
      this.sock.write(Buffer.from(bytes));
    });
  }

  async members(filter?: { Name?: string; Tags?: Record<string, string>; Status?: string }): Promise<SerfMember[]> {
    const r = (filter ? await this.call("members-filtered", filter, true) : await this.call("members", undefined, true)) as unknown as { Members: SerfMember[] };
    return r.Members;
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    await this.call("tags", { Tags: tags, DeleteTags: [] }, false);
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const at = { i: 0 };
      let v: Msg;
      try {
        v = decode(this.buf, at);
      } catch (e) {
        if (e === INCOMPLETE) return;
        return this.failAll(e as Error);
      }
      this.buf = this.buf.subarray(at.i);
      if (this.bodyOf !== null) {
        this.waiting.get(this.bodyOf)?.resolve(v);
        this.waiting.delete(this.bodyOf);
        this.bodyOf = null;
        continue;
      }
      const h = v as { Seq: number; Error: string };
      const w = this.waiting.get(h.Seq);
      if (!w) continue;
      if (h.Error) {
        this.waiting.delete(h.Seq);
        w.reject(new Error(`serf rpc: ${h.Error}`));
      } else if (w.body) this.bodyOf = h.Seq;
      else {
        this.waiting.delete(h.Seq);
        w.resolve(null);
      }
    }
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}

// ---- the baseline ----

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bindable(port: number): Promise<boolean> {
  const tcp = new Promise<boolean>((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
  const udp = new Promise<boolean>((resolve) => {
    const s = dgram.createSocket("udp4");
    s.once("error", () => (s.close(), resolve(false)));
    s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
  return Promise.all([tcp, udp]).then(([a, b]) => a && b);
}

/**
 * Ports free for TCP and UDP, below the kernel's ephemeral range (from 32768): a port the kernel
 * handed out and took back (port 0) can be given again to the members' own outgoing connections
 * while 100 of them start at once, and a member that cannot bind exits.
 */
async function loopbackPorts(count: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = 20_000 + Math.floor(Math.random() * 10_000); out.length < count && p < 32_768; p++) if (await bindable(p)) out.push(p);
  if (out.length < count) throw new Error(`only ${out.length} of ${count} loopback ports free below 32768`);
  return out;
}

export interface SerfOptions {
  n: number;
  /** give up on the cluster forming after this long */
  formS: number;
}

/** The result of startSerf: a formed cluster to time tag changes on, or why there is none. */
export interface SerfCluster {
  /** rows of the figures, or one row saying why the baseline could not run */
  measure(rounds: number, pollMs: number): Promise<Row[]>;
  close(): void;
}

const spreadName = (n: number) => `Serf: a tag change on one member until all ${n - 1} others hold it`;

/**
 * Start n members and wait until the cluster is formed. Never throws: a cluster that did not form
 * measures as one row saying why.
 */
export async function startSerf(o: SerfOptions): Promise<SerfCluster> {
  const procs: ChildProcess[] = [];
  const rpcs: SerfRpc[] = [];
  const close = () => {
    for (const r of rpcs) r?.close();
    for (const p of procs) p.kill("SIGKILL");
  };
  const failed = (note: string): SerfCluster => (close(), { measure: async () => [{ name: spreadName(o.n), value: NaN, unit: "ms", note }], close });
  if (!spawnSync("sh", ["-c", "command -v serf"], { encoding: "utf8" }).stdout.trim()) return failed("serf is not installed (apt-get install -y serf)");
  try {
    const free = await loopbackPorts(2 * o.n);
    const ports = Array.from({ length: o.n }, (_, i) => ({ bind: free[2 * i], rpc: free[2 * i + 1] }));
    let exited: string | undefined;
    const start = (i: number) => {
      const args = ["agent", "-node", `s${i}`, "-bind", `127.0.0.1:${ports[i].bind}`, "-rpc-addr", `127.0.0.1:${ports[i].rpc}`, "-tag", "free=0", "-log-level", "err"];
      // every member joins the first one (Serf's push-pull on join hands it the whole member list),
      // tried again each second: on a loaded machine the first may answer 99 joins slowly
      if (i > 0) args.push("-retry-join", `127.0.0.1:${ports[0].bind}`, "-retry-interval", "1s");
      const p = spawn("serf", args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      const keep = (d: Buffer) => (out = (out + d.toString()).slice(-300));
      p.stdout!.on("data", keep);
      p.stderr!.on("data", keep);
      p.on("exit", (code, signal) => signal !== "SIGKILL" && (exited ??= `member s${i} exited (${code ?? signal}): ${out.trim()}`));
      procs.push(p);
    };
    const t0 = Date.now();
    const formBy = t0 + o.formS * 1000;
    const openRpc = async (i: number): Promise<SerfRpc> => {
      for (;;) {
        try {
          return await SerfRpc.open(ports[i].rpc);
        } catch (e) {
          if (exited) throw new Error(exited);
          if (Date.now() > formBy) throw e;
          await sleep(20);
        }
      }
    };
    start(0);
    rpcs[0] = await openRpc(0);
    for (let i = 1; i < o.n; i++) start(i);
    for (let i = 1; i < o.n; i++) rpcs[i] = await openRpc(i);
    // formed when a few members (first, middle, last) each see all n alive: one RPC each per look
    const lookouts = [0, Math.floor(o.n / 2), o.n - 1];
    for (;;) {
      const counts = await Promise.all(lookouts.map(async (i) => (await rpcs[i].members({ Status: "alive" })).filter((m) => m.Status === "alive").length));
      const alive = Math.min(...counts);
      if (alive >= o.n) break;
      if (exited) return failed(exited);
      if (Date.now() > formBy) return failed(`the Serf cluster had ${alive} of ${o.n} members alive after ${o.formS} s`);
      await sleep(100);
    }
    const formedS = (Date.now() - t0) / 1000;
    return { measure: (rounds, pollMs) => spread(rpcs, formedS, rounds, pollMs).catch((e) => [{ name: spreadName(o.n), value: NaN, unit: "ms", note: `the Serf baseline failed: ${(e as Error).message}` }]), close };
  } catch (e) {
    return failed(`the Serf cluster did not start: ${(e as Error).message}`);
  }
}

/** Change member 0's tag `rounds` times; each time, ask every other member until it holds it. */
async function spread(rpcs: SerfRpc[], formedS: number, rounds: number, pollMs: number): Promise<Row[]> {
  const n = rpcs.length;
  const all: number[] = [];
  const each: number[] = [];
  let asks = 0;
  for (let round = 1; round <= rounds; round++) {
    const value = `r${round}`;
    const seen = async (i: number, since: bigint): Promise<number> => {
      for (;;) {
        asks++;
        const m = await rpcs[i].members({ Name: "s0", Tags: { free: value } });
        const now = process.hrtime.bigint();
        if (m.some((x) => x.Name === "s0" && x.Tags.free === value)) return Number(now - since) / 1e6;
        if (now - since > 30_000_000_000n) return NaN;
        await sleep(pollMs);
      }
    };
    await sleep(200); // the last change's retransmissions die down
    const since = process.hrtime.bigint();
    // not awaited before asking: Serf answers a tag change only once its broadcast is done
    // (memberlist UpdateNode), long after most members hold it
    const set = rpcs[0].setTags({ free: value });
    const times = await Promise.all(Array.from({ length: n - 1 }, (_, k) => seen(k + 1, since)));
    await set;
    each.push(...times);
    all.push(times.some(Number.isNaN) ? NaN : Math.max(...times));
  }
  return [
    { name: `Serf: start ${n} members until the first, middle and last see all alive (LAN defaults, all join the first)`, value: formedS, unit: "s" },
    { name: `${spreadName(n)}, median of ${rounds}`, value: percentile(all, 50), unit: "ms", note: `each member asked over Serf's RPC every ${pollMs} ms (${asks} asks): resolution ${pollMs} ms plus one ask` },
    { name: `Serf: a tag change until one member holds it, p50 (${each.length} member-times)`, value: percentile(each, 50), unit: "ms" },
  ];
}
