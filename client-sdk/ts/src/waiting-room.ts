// Waiting for a pass in a flight's waiting room: join, watch the place in the queue, keep watching across
// broken connections, and hand back the pass CreateBooking needs while the room is enabled.
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";

import type { AerobookClient, ServiceClient } from "./client.js";
import { ApiError } from "./errors.js";
import type { WaitingRoomService, WaitingRoomStatus } from "./gen/index.js";
import { DEFAULT_RETRY_POLICY, delayAfter, NEVER_RETRY, pause, type RetryPolicy } from "./retry.js";

export interface WaitForPassOptions {
  /** Aborting it stops waiting (the ticket keeps its place: waiting again rejoins with it). */
  readonly signal?: AbortSignal;
  /** Called with each place in the queue the server reports before the pass. */
  readonly onStatus?: (progress: WaitingRoomProgress) => void;
  /**
   * How often a broken watch is joined and watched again before giving up (default
   * `DEFAULT_RETRY_POLICY`); the count starts over with every status that arrives.
   */
  readonly retry?: RetryPolicy;
}

export interface WaitingRoomProgress {
  readonly ticketId: string;
  /** 1-based: 1 is admitted next. Before the room opens, the place drawn so far among the early arrivals. */
  readonly position: number;
  /** The server's estimate of the wait for admission, in milliseconds. */
  readonly estimatedWaitMs: number;
}

export interface WaitingRoomPass {
  /** Send it as `waitingRoomPass` with CreateBooking on this flight, before `expiresAt`. */
  readonly pass: string;
  readonly expiresAt: Date;
  readonly ticketId: string;
}

/** The wait ended without a pass: the flight sold out, or the server ended the watch without deciding. */
export class WaitingRoomError extends Error {
  override readonly name = "WaitingRoomError";
  /** Every cabin of the flight is sold out: no pass will come. */
  readonly soldOut: boolean;
  readonly flightId: string;

  constructor(fields: { soldOut: boolean; flightId: string; message: string }) {
    super(fields.message);
    this.soldOut = fields.soldOut;
    this.flightId = fields.flightId;
  }
}

/**
 * Joins the flight's waiting room and waits for admission. Resolves with the pass; rejects with a
 * `WaitingRoomError` when the flight sells out or the watch ends without a pass, with an `ApiError` when
 * the server refuses (`NOT_FOUND`: the flight has no enabled waiting room), and with the signal's reason
 * when aborted. A watch that breaks for a retryable reason is joined and watched again: joining again
 * returns the same ticket, so the place in the queue is kept.
 */
export async function waitForPass(
  client: Pick<AerobookClient, "waitingRoom"> | ServiceClient<typeof WaitingRoomService>,
  flightId: string,
  options: WaitForPassOptions = {},
): Promise<WaitingRoomPass> {
  const rooms = "waitingRoom" in client ? client.waitingRoom : client;
  for await (const { ticketId, status } of statusesOf(rooms, flightId, options)) {
    // A pass comes with its expiry; one without is not a pass a caller could use in time.
    if (status.pass !== "" && status.passExpiresAt !== undefined) {
      return { pass: status.pass, expiresAt: timestampDate(status.passExpiresAt), ticketId };
    }
    if (status.soldOut) {
      throw new WaitingRoomError({ soldOut: true, flightId, message: `flight ${flightId} sold out while waiting` });
    }
    options.onStatus?.({
      ticketId,
      position: Number(status.position),
      estimatedWaitMs: status.estimatedWait === undefined ? 0 : durationMs(status.estimatedWait),
    });
  }
  throw new WaitingRoomError({ soldOut: false, flightId, message: `the waiting room of flight ${flightId} ended the watch without a pass` });
}

/**
 * The ticket's statuses, across reconnections, until the server ends the watch. `onStatus` runs in the
 * consumer, outside this `try`, so an error of the caller's ends the wait instead of being repeated.
 */
async function* statusesOf(
  rooms: ServiceClient<typeof WaitingRoomService>,
  flightId: string,
  { signal, retry = DEFAULT_RETRY_POLICY }: WaitForPassOptions,
): AsyncGenerator<{ ticketId: string; status: WaitingRoomStatus }> {
  const callOptions = signal === undefined ? {} : { signal };
  let failures = 0;
  for (;;) {
    try {
      // Repeats are this loop's to decide, so a join is not repeated twice over.
      const ticket = await rooms.joinWaitingRoom({ flightId }, { ...callOptions, retry: NEVER_RETRY });
      for await (const status of rooms.watchWaitingRoom({ ticketId: ticket.ticketId }, callOptions)) {
        failures = 0;
        yield { ticketId: ticket.ticketId, status };
      }
      return;
    } catch (error) {
      // The SDK's calls fail with ApiErrors; anything else is the caller's abort.
      if (!(error instanceof ApiError)) {
        throw error;
      }
      failures += 1;
      // Joining is IDEMPOTENT and watching NO_SIDE_EFFECTS: both are safe to repeat.
      const wait = delayAfter(retry, failures, error, true, undefined, Math.random());
      if (wait === undefined) {
        throw error;
      }
      await pause(wait, signal);
    }
  }
}
