// Token renewal through the SDK: concurrent calls with an expired token share one refresh (the server
// revokes a session whose refresh token is used twice), and what happens when renewal is impossible.
import { describe, expect, it } from "vitest";

import { ErrorCode, MemoryTokenStore, type Tokens } from "../src/index.js";
import { expectDecoded, failure } from "./support/contract.js";
import { MATRIX, clientFor, expiredCopyOf, signUp } from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

class CountingTokenStore extends MemoryTokenStore {
  saves = 0;
  override save(tokens: Tokens | undefined): void {
    this.saves += 1;
    super.save(tokens);
  }
}

const inAnHour = () => new Date(Date.now() + 3_600_000);

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("renews once for 20 concurrent calls whose token the server calls expired", async () => {
    const store = new CountingTokenStore();
    const client = clientFor(server(), transport, { tokenStore: store });
    const userId = await signUp(client);
    const signedIn = (await client.tokens())!;
    // The client believes its token good for an hour; the server says it expired.
    await client.setTokens({ ...signedIn, accessToken: expiredCopyOf(signedIn.accessToken), accessTokenExpiresAt: inAnHour() });
    store.saves = 0;

    const answers = await Promise.all(Array.from({ length: 20 }, () => client.auth.getMe({})));
    expect(new Set(answers.map((me) => me.id))).toEqual(new Set([userId]));
    expect(store.saves).toBe(1);
    const renewed = (await client.tokens())!;
    expect(renewed.refreshToken).not.toBe(signedIn.refreshToken);
  });

  it("hands TOKEN_EXPIRED to the caller when nothing can renew the token", async () => {
    const client = clientFor(server(), transport);
    await signUp(client);
    const { accessToken } = (await client.tokens())!;
    await client.setTokens({ accessToken: expiredCopyOf(accessToken) });
    expectDecoded(ErrorCode.TOKEN_EXPIRED, await failure(client.auth.getMe({})));
  });

  it("ends the session when the server refuses the refresh", async () => {
    const client = clientFor(server(), transport);
    await signUp(client);
    const { accessToken } = (await client.tokens())!;
    await client.setTokens({ accessToken: expiredCopyOf(accessToken), refreshToken: "revoked-or-made-up", accessTokenExpiresAt: inAnHour() });
    const error = await failure(client.auth.getMe({}));
    expect(error.code).toBe(ErrorCode.UNAUTHORIZED);
    expect(await client.tokens()).toBeUndefined();
  });
});
