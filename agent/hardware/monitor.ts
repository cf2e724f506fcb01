import type { Logger } from "pino";
import { unitsEqual } from "../capacity/units";
import { HardwareError } from "./errors";
import type { HardwareOptions } from "./options";
import type { Disk, Gpu, HardwareProbe, HardwareReport } from "./types";

export interface HardwareMonitorModules {
  probe: HardwareProbe;
  /** the agent's logger; the monitor logs through a child `{module: "hardware"}` */
  logger: Logger;
  /** closes the monitor when aborted */
  signal?: AbortSignal;
}

export type HardwareListener = (report: HardwareReport) => void;

function diskKey(d: Disk): string {
  return `${d.name}\u0000${d.class}\u0000${d.sizeBytes}`;
}

function gpuKey(g: Gpu): string {
  return `${g.id}\u0000${g.vendor}\u0000${g.model}\u0000${g.memoryBytes}`;
}

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
}

/**
 * True when the capacity a report offers changed: any total unit, a disk added, removed,
 * resized or reclassed, or a GPU added, removed or changed. The probe time and the order of
 * disks and GPUs do not count.
 */
export function hardwareChanged(before: HardwareReport, after: HardwareReport): boolean {
  return !unitsEqual(before.total, after.total) || !sameSet(before.disks.map(diskKey), after.disks.map(diskKey)) || !sameSet(before.gpus.map(gpuKey), after.gpus.map(gpuKey));
}

/** What a `hardware_changed` log line shows of a report. */
export function hardwareSummary(r: HardwareReport): { total: HardwareReport["total"]; disks: Array<Pick<Disk, "name" | "class" | "sizeBytes">>; gpus: Array<Pick<Gpu, "id" | "vendor" | "model">> } {
  return {
    total: { ...r.total },
    disks: r.disks.map((d) => ({ name: d.name, class: d.class, sizeBytes: d.sizeBytes })),
    gpus: r.gpus.map((g) => ({ id: g.id, vendor: g.vendor, model: g.model })),
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Keeps the node's hardware report current: probes at start(), then every reprobeIntervalMs
 * (the timer does not keep the process alive; the next probe is scheduled when one ends, so
 * probes never overlap). When the offered capacity changes it logs `hardware_changed` at info
 * and calls the onChange listeners. A failed re-probe logs `hardware_probe_failed` and keeps the
 * last report.
 */
export class HardwareMonitor {
  private readonly log: Logger;
  private report: HardwareReport | null = null;
  private readonly listeners = new Set<HardwareListener>();
  private starting: Promise<HardwareReport> | null = null;
  private inflight: Promise<HardwareReport> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly options: Pick<HardwareOptions, "reprobeIntervalMs">,
    private readonly modules: HardwareMonitorModules,
  ) {
    this.log = modules.logger.child({ module: "hardware" });
    modules.signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  /** The first probe; rejects with its HardwareError (the caller cannot offer capacity without it). */
  start(): Promise<HardwareReport> {
    if (!this.starting) {
      this.starting = this.first();
      this.starting.catch(() => {
        this.starting = null;
      });
    }
    return this.starting;
  }

  /** The latest good report. Throws HardwareError "not_started" before start() resolved. */
  current(): HardwareReport {
    if (!this.report) throw new HardwareError("not_started", "HardwareMonitor.current() called before start() resolved", {});
    return this.report;
  }

  /** Calls `fn` with the new report whenever the offered capacity changes; returns an unsubscribe function. */
  onChange(fn: HardwareListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /**
   * Probes now (sharing a probe already running) and notifies on change. Resolves with the
   * current report, the previous one when the probe failed; never rejects after start().
   */
  reprobe(): Promise<HardwareReport> {
    if (!this.report) return this.start();
    if (!this.inflight) {
      this.inflight = this.next().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  /** Stops re-probing; a probe still running is ignored when it ends. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async first(): Promise<HardwareReport> {
    const report = await this.modules.probe.probe();
    this.report = report;
    this.log.info({ event: "hardware_probed", ...hardwareSummary(report), sources: report.sources }, "hardware probed");
    this.schedule();
    return report;
  }

  private async next(): Promise<HardwareReport> {
    const before = this.current();
    let after: HardwareReport;
    try {
      after = await this.modules.probe.probe();
    } catch (err: unknown) {
      if (!this.closed) {
        this.log.warn({ event: "hardware_probe_failed", code: err instanceof HardwareError ? err.code : "unknown", err: message(err) }, "hardware probe failed");
      }
      return before;
    }
    if (this.closed) return before;
    this.report = after;
    if (hardwareChanged(before, after)) {
      this.log.info({ event: "hardware_changed", before: hardwareSummary(before), after: hardwareSummary(after) }, "hardware changed");
      for (const fn of [...this.listeners]) {
        try {
          fn(after);
        } catch (err: unknown) {
          this.log.error({ event: "hardware_listener_failed", err: message(err) }, "hardware change listener failed");
        }
      }
    }
    return after;
  }

  private schedule(): void {
    if (this.closed || this.options.reprobeIntervalMs === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.reprobe().then(
        () => this.schedule(),
        () => this.schedule(),
      );
    }, this.options.reprobeIntervalMs);
    this.timer.unref();
  }
}
