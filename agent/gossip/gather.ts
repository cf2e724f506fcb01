import type { Bus, BusSubscription } from "../bus/bus";

export interface GatherOptions {
  /** stop after this long in any case, ms */
  deadlineMs: number;
  /** stop this long after the last reply (counted from the first reply on), ms; 0 = off */
  quietMs: number;
  signal?: AbortSignal;
}

/**
 * Scatter-gather over NATS: publish `payload` on `subject` with a private reply inbox and hand
 * every reply to `onReply` until the deadline, a quiet period after the last reply, an abort, or
 * `stop()` (called by `onReply` when it has enough). Replies are counted by the caller, so a
 * limit counts only answers it found valid. Resolves when collection ended.
 */
export function gather(bus: Bus, subject: string, payload: Uint8Array, opts: GatherOptions, onReply: (data: Uint8Array, stop: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const inbox = bus.createInbox();
    let sub: BusSubscription | null = null;
    let deadline: NodeJS.Timeout | null = null;
    let quiet: NodeJS.Timeout | null = null;
    let finished = false;
    const stop = (): void => {
      if (finished) return;
      finished = true;
      if (deadline) clearTimeout(deadline);
      if (quiet) clearTimeout(quiet);
      opts.signal?.removeEventListener("abort", stop);
      try {
        sub?.unsubscribe();
      } catch {
        /* the connection is closed */
      }
      resolve();
    };
    try {
      sub = bus.subscribe(inbox, {
        callback: (err, msg) => {
          if (err || finished) return;
          // a 503 "no responders" status carries no data
          if (msg.data.length === 0) return;
          if (opts.quietMs > 0) {
            if (quiet) clearTimeout(quiet);
            quiet = setTimeout(stop, opts.quietMs);
          }
          onReply(msg.data, stop);
        },
      });
      bus.publish(subject, payload, { reply: inbox });
    } catch {
      // the connection is closed or draining: nothing to gather
      return stop();
    }
    deadline = setTimeout(stop, opts.deadlineMs);
    if (opts.signal?.aborted) return stop();
    opts.signal?.addEventListener("abort", stop, { once: true });
  });
}
