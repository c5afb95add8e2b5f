// When the SDK repeats a failed call, and how long it waits first (the Rust SDK's rules).
import type { ApiError } from "./errors.js";

export interface RetryPolicy {
  /** Attempts in all, the first included; 1 turns repeats off. */
  readonly maxAttempts: number;
  /** The wait before the first repeat; it doubles with each repeat up to `maxBackoffMs`. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 4, initialBackoffMs: 100, maxBackoffMs: 5_000 };
export const NEVER_RETRY: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 };

/**
 * How long to wait before repeating after `failures` failed attempts, or `undefined` to give up.
 * - Server errors are repeated when the contract marks them retryable. Transport and protocol failures
 *   only when the RPC is safe to repeat (a read, `IDEMPOTENT`, or keyed): the server may have acted.
 * - The wait is half to all of the backoff (`jitter` in [0, 1] picks where), never shorter than the
 *   server's `RetryInfo`, and no repeat starts that the deadline (`timeLeftMs`) would cut short.
 */
export function delayAfter(
  policy: RetryPolicy,
  failures: number,
  error: ApiError,
  safeToRepeat: boolean,
  timeLeftMs: number | undefined,
  jitter: number,
): number | undefined {
  const repeatable =
    error.origin === "server" ? error.retryable : error.origin !== "client" && error.retryable && safeToRepeat;
  if (!repeatable || failures >= policy.maxAttempts) {
    return undefined;
  }
  const backoff = Math.min(policy.initialBackoffMs * 2 ** Math.min(failures - 1, 16), policy.maxBackoffMs);
  const delay = Math.max(backoff * (0.5 + Math.min(Math.max(jitter, 0), 1) / 2), error.retryAfter ?? 0);
  return timeLeftMs !== undefined && delay >= timeLeftMs ? undefined : delay;
}

/** Waits `ms`; aborting `signal` ends the wait at once, rejecting with the signal's reason. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
