import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { Systeminformation } from "systeminformation";
import { MiB } from "../capacity/units";
import type { Gpu } from "./types";

/**
 * Display adapters that are not compute GPUs. The GPU unit counts whole devices a workload can
 * be given (zos passes them through to a VM on a rented node), so these never count:
 *  - virtual adapters of hypervisors: VMware SVGA, QEMU/Bochs stdvga, Cirrus, virtio-gpu
 *    (vendor "Red Hat"), Hyper-V and "Microsoft Basic Display Adapter", VirtualBox;
 *  - the server board's BMC/onboard VGA (ASPEED AST2x00, Matrox G200): the console's display,
 *    present on most grid servers, with no compute and not passable to a VM.
 * A real GPU passed through into a VM keeps its own vendor (NVIDIA, AMD, Intel) and counts.
 */
export const NOT_COMPUTE_GPU: readonly RegExp[] = [
  /vmware/i,
  /qemu/i,
  /cirrus/i,
  /bochs/i,
  /virtio/i,
  /red hat/i,
  /microsoft/i,
  /virtualbox|innotek/i,
  /aspeed/i,
  /matrox/i,
];

/** True for a controller that is not a compute GPU (see NOT_COMPUTE_GPU). */
export function isNotComputeGpu(vendor: string, model: string): boolean {
  return NOT_COMPUTE_GPU.some((re) => re.test(vendor) || re.test(model));
}

/**
 * GPUs from systeminformation's `graphics().controllers`: entries with neither vendor nor model
 * and display adapters that are not compute GPUs are left out. Memory is `vram` (MiB; from
 * nvidia-smi's memory.total when present), 0 when unknown. The id is the PCI bus address
 * (nvidia-smi's `pciBus`, else lspci's `busAddress`), else "gpu<index>" among the kept GPUs.
 */
export function gpusFromControllers(controllers: readonly Partial<Systeminformation.GraphicsControllerData>[]): Gpu[] {
  const gpus: Gpu[] = [];
  for (const c of controllers) {
    const vendor = (c.vendor ?? "").trim();
    const model = (c.model || c.name || "").trim();
    if (!vendor && !model) continue;
    if (isNotComputeGpu(vendor, model)) continue;
    const mib = [c.vram, c.memoryTotal].find((v): v is number => typeof v === "number" && Number.isFinite(v) && v > 0) ?? 0;
    const id = (c.pciBus || c.busAddress || "").trim() || `gpu${gpus.length}`;
    gpus.push({ vendor, model, memoryBytes: Math.round(mib * MiB), id });
  }
  return gpus;
}

/** Where the probe gets GPUs from; a node without GPU support can pass `{ read: async () => [], close() {} }`. */
export interface GpuReader {
  read(): Promise<Gpu[]>;
  close(): void;
}

/**
 * The worker's code, run with `eval: true` (a .ts worker file would not load under ts-jest, and
 * inline code works the same from compiled dist). systeminformation is required by the absolute
 * path the main thread resolved, so the worker does not depend on the process's cwd.
 */
export const GPU_WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
require(workerData.systeminformation).graphics().then(
  (g) => parentPort.postMessage({ ok: true, controllers: g.controllers }),
  (err) => parentPort.postMessage({ ok: false, error: String((err && err.message) || err) }),
);
`;

type WorkerReply = { ok: true; controllers: Systeminformation.GraphicsControllerData[] } | { ok: false; error: string };

export interface WorkerGpuReaderOptions {
  /** abandon a scan after this long, ms (HardwareOptions.gpuTimeoutMs) */
  timeoutMs: number;
  /** reuse a successful scan for this long, ms (HardwareOptions.gpuCacheMs) */
  cacheMs: number;
}

export interface WorkerGpuReaderModules {
  /** the hardware module's logger */
  logger: Logger;
  /**
   * the worker's code and data (default GPU_WORKER_SOURCE with the resolved systeminformation
   * path). Tests pass a worker that never answers to take the timeout path deterministically.
   */
  worker?: { source: string; workerData?: unknown };
}

/**
 * GPUs via systeminformation's `graphics()`, which runs nvidia-smi (and lspci, dmidecode) with
 * execSync: it would block the event loop for as long as the driver takes, so it runs in a
 * worker thread. A scan that does not answer within `timeoutMs` is abandoned: the worker is
 * terminated and unref'd, the last good result (or []) is returned and a warning logged.
 * A good result is cached for `cacheMs`; concurrent reads share one scan.
 *
 * A worker stuck in execSync cannot be stopped until its child process returns (V8 can only
 * interrupt JavaScript); no new scan starts while one is stuck, so threads never pile up. Node
 * waits for such a thread when the process exits.
 */
export class WorkerGpuReader implements GpuReader {
  private cache: { gpus: Gpu[]; at: number } | null = null;
  private inflight: Promise<Gpu[]> | null = null;
  /** the worker of the scan in progress */
  private running: Worker | null = null;
  /** a timed-out worker that has not exited yet */
  private stuck: Worker | null = null;
  private closed = false;
  private readonly source: string;
  private readonly workerData: unknown;

  constructor(
    private readonly options: WorkerGpuReaderOptions,
    private readonly modules: WorkerGpuReaderModules,
  ) {
    this.source = modules.worker?.source ?? GPU_WORKER_SOURCE;
    this.workerData = modules.worker ? modules.worker.workerData : { systeminformation: require.resolve("systeminformation") };
  }

  /** GPUs of this machine; never rejects (a failed or timed-out scan gives the last good answer or []). */
  read(): Promise<Gpu[]> {
    if (this.cache && Date.now() - this.cache.at < this.options.cacheMs) return Promise.resolve(this.cache.gpus);
    if (this.inflight) return this.inflight;
    if (this.closed) return Promise.resolve(this.fallback());
    if (this.stuck) {
      this.modules.logger.warn({ event: "gpu_probe_skipped", reason: "previous_scan_stuck", gpus: this.fallback().length }, "GPU scan skipped");
      return Promise.resolve(this.fallback());
    }
    this.inflight = this.scan().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** Terminates a running or stuck worker; later reads return the cached GPUs or []. */
  close(): void {
    this.closed = true;
    if (this.running) stop(this.running);
    if (this.stuck) stop(this.stuck);
  }

  private fallback(): Gpu[] {
    return this.cache ? this.cache.gpus : [];
  }

  private scan(): Promise<Gpu[]> {
    return new Promise<Gpu[]>((resolve) => {
      const log = this.modules.logger;
      let worker: Worker;
      try {
        worker = new Worker(this.source, { eval: true, workerData: this.workerData });
      } catch (err: unknown) {
        log.warn({ event: "gpu_probe_failed", err: String(err), gpus: this.fallback().length }, "GPU scan failed");
        resolve(this.fallback());
        return;
      }
      this.running = worker;
      let settled = false;
      const done = (gpus: Gpu[]): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.running = null;
        this.cache = { gpus, at: Date.now() };
        resolve(gpus);
        stop(worker);
      };
      const failed = (err: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.running = null;
        if (!this.closed) log.warn({ event: "gpu_probe_failed", err, gpus: this.fallback().length, cached: this.cache !== null }, "GPU scan failed");
        resolve(this.fallback());
        stop(worker);
      };
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.running = null;
        this.stuck = worker;
        log.warn({ event: "gpu_probe_timeout", timeoutMs: this.options.timeoutMs, gpus: this.fallback().length, cached: this.cache !== null }, "GPU scan timed out");
        resolve(this.fallback());
        stop(worker);
      }, this.options.timeoutMs);
      worker.on("message", (m: WorkerReply) => {
        if (m && m.ok === true && Array.isArray(m.controllers)) done(gpusFromControllers(m.controllers));
        else failed(m && m.ok === false ? m.error : "unexpected reply from the GPU worker");
      });
      worker.on("error", (err: Error) => failed(err.message));
      worker.on("exit", (exitCode: number) => {
        if (this.stuck === worker) this.stuck = null;
        failed(`GPU worker exited with code ${exitCode}`);
      });
    });
  }
}

/** Lets the process exit without the worker and asks it to stop. terminate() settles only when the thread exits, which a child process can delay: it is not awaited. */
function stop(worker: Worker): void {
  worker.unref();
  worker.terminate().catch(() => undefined);
}
