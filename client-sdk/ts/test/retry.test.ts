// Idempotent retries through the SDK: a lost answer is repeated under the same key and books once; a
// call that is not safe to repeat is not repeated; a caller's own key replays.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";

import { ErrorCode, type ResponseInfo } from "../src/index.js";
import { failure } from "./support/contract.js";
import {
  MATRIX,
  PASSWORD,
  clientFor,
  economySeatsAvailable,
  holdRequest,
  newFlight,
  operatorFor,
  signUp,
  uniqueEmail,
} from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

/**
 * Lets the first call of `method` reach the server and be answered, then loses the answer the way a
 * dropped connection does: the server acted, the caller never hears of it.
 */
function loseFirstAnswerOf(method: string) {
  const seen = { requests: 0, lost: 0, keys: [] as string[] };
  const interceptor: Interceptor = (next) => async (request) => {
    if (request.method.localName !== method) {
      return next(request);
    }
    seen.requests += 1;
    seen.keys.push(request.header.get("idempotency-key") ?? "");
    const answer = await next(request);
    if (seen.lost === 0) {
      seen.lost += 1;
      throw new ConnectError("connection reset before the answer", Code.Unavailable);
    }
    return answer;
  };
  return { seen, interceptor };
}

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("repeats a hold whose answer was lost with the same key, and books once", async () => {
    const flight = await newFlight(await operatorFor(server(), transport), "ABC");
    const { seen, interceptor } = loseFirstAnswerOf("createBooking");
    const customer = clientFor(server(), transport, { interceptors: [interceptor] });
    await signUp(customer);
    let answered: ResponseInfo | undefined;
    const booking = await customer.booking.createBooking(holdRequest(flight, ["Sara"]), {
      onResponse: (info) => (answered = info),
    });
    expect(seen).toMatchObject({ requests: 2, lost: 1 });
    expect(seen.keys[0]).toMatch(/^sdk-/);
    expect(seen.keys[1]).toBe(seen.keys[0]);
    expect(answered?.replayed).toBe(true);
    const mine = await customer.booking.listBookings({ flightId: flight.id });
    expect(mine.bookings.map((each) => each.id)).toEqual([booking.id]);
    expect(economySeatsAvailable(await customer.flight.getFlight({ flightId: flight.id }))).toBe(2);
  });

  it("does not repeat a registration whose answer was lost", async () => {
    const { seen, interceptor } = loseFirstAnswerOf("register");
    const client = clientFor(server(), transport, { interceptors: [interceptor] });
    const email = uniqueEmail("lost");
    const error = await failure(client.auth.register({ email, password: PASSWORD, fullName: "Sara Ahmed" }));
    expect({ code: error.code, origin: error.origin }).toEqual({ code: ErrorCode.SERVICE_UNAVAILABLE, origin: "transport" });
    expect(seen.requests).toBe(1);
    const signedIn = await clientFor(server(), transport).auth.login({ email, password: PASSWORD });
    expect(signedIn.user?.email).toBe(email);
  });

  it("replays the first answer for a caller's own key", async () => {
    const flight = await newFlight(await operatorFor(server(), transport), "AB");
    const customer = clientFor(server(), transport);
    await signUp(customer);
    const key = `ts-own-key-${crypto.randomUUID()}`;
    const replays: boolean[] = [];
    const hold = () =>
      customer.booking.createBooking(holdRequest(flight, ["Sara"], ["10A"]), {
        idempotencyKey: key,
        onResponse: (info) => replays.push(info.replayed),
      });
    const first = await hold();
    const again = await hold();
    expect(again.id).toBe(first.id);
    expect(replays).toEqual([false, true]);
    expect(economySeatsAvailable(await customer.flight.getFlight({ flightId: flight.id }))).toBe(1);
  });
});
