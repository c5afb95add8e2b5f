// The signed-in session: where the tokens live, and renewing the access token one refresh at a time.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { ApiError } from "./errors.js";
import { ErrorCode, type AuthTokens } from "./gen/index.js";

export interface Tokens {
  readonly accessToken: string;
  /** Absent when the session cannot be renewed (a bare access token). */
  readonly refreshToken?: string | undefined;
  readonly accessTokenExpiresAt?: Date | undefined;
}

/**
 * Where the session's tokens are kept. The default keeps them in memory; a browser app may keep them in
 * `sessionStorage` (see `webStorageTokenStore` in `@aerobook/sdk/web`), a React Native app in its secure
 * storage. Both methods may be asynchronous.
 */
export interface TokenStore {
  load(): Tokens | undefined | Promise<Tokens | undefined>;
  save(tokens: Tokens | undefined): void | Promise<void>;
}

export class MemoryTokenStore implements TokenStore {
  #tokens: Tokens | undefined;
  load(): Tokens | undefined {
    return this.#tokens;
  }
  save(tokens: Tokens | undefined): void {
    this.#tokens = tokens;
  }
}

/** Renew an access token this long before it expires, so clock skew and travel time do not make it late. */
const EARLY_REFRESH_MS = 30_000;

export function tokensOf(answer: AuthTokens): Tokens {
  return {
    accessToken: answer.accessToken,
    refreshToken: answer.refreshToken === "" ? undefined : answer.refreshToken,
    accessTokenExpiresAt: expiry(answer.accessTokenExpiresAt),
  };
}

function expiry(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp === undefined ? undefined : timestampDate(timestamp);
}

/** Exchanges a refresh token with the server; the answer becomes the session (see `Session.save`). */
export type Refresh = (refreshToken: string) => Promise<AuthTokens>;

export class Session {
  /** The tail of the queue of renewals: each waits for the one before, so one refresh serves them all. */
  #turn: Promise<unknown> = Promise.resolve();

  constructor(
    readonly store: TokenStore,
    private readonly refresh: Refresh,
  ) {}

  async tokens(): Promise<Tokens | undefined> {
    return this.store.load();
  }

  async save(tokens: Tokens | undefined): Promise<void> {
    await this.store.save(tokens);
  }

  /**
   * The access token to send, renewed first when it is about to expire. When renewing fails for a passing
   * reason the current token goes out: it may still be valid, and if not the server says so.
   */
  async accessToken(now: number = Date.now()): Promise<string | undefined> {
    const tokens = await this.store.load();
    if (tokens === undefined) {
      return undefined;
    }
    const due =
      tokens.refreshToken !== undefined &&
      tokens.accessTokenExpiresAt !== undefined &&
      tokens.accessTokenExpiresAt.getTime() - EARLY_REFRESH_MS <= now;
    if (!due) {
      return tokens.accessToken;
    }
    try {
      return (await this.renew(tokens.accessToken)) ?? tokens.accessToken;
    } catch (error) {
      if (error instanceof ApiError && error.code === ErrorCode.UNAUTHORIZED) {
        throw error;
      }
      return tokens.accessToken;
    }
  }

  /**
   * Renews the session after the server refused `stale` as expired; fails with `expired` itself when
   * nothing can renew it.
   */
  async refreshAfter(stale: string, expired: ApiError): Promise<void> {
    if ((await this.renew(stale)) === undefined) {
      throw expired;
    }
  }

  /**
   * Replaces the access token `stale`, one refresh at a time: a renewal that waited for another one finds
   * `stale` already replaced and uses the new token (the server treats a refresh token used twice as stolen
   * and ends the session). `undefined` when nothing can renew it; a refused refresh ends the session.
   */
  renew(stale: string): Promise<string | undefined> {
    const renewal = this.#turn.then(() => this.#exchange(stale));
    this.#turn = renewal.catch(() => undefined);
    return renewal;
  }

  async #exchange(stale: string): Promise<string | undefined> {
    const tokens = await this.store.load();
    if (tokens !== undefined && tokens.accessToken !== stale) {
      return tokens.accessToken;
    }
    if (tokens?.refreshToken === undefined) {
      return undefined;
    }
    try {
      // The client saves the answer as the session, like every AuthTokens answer.
      return (await this.refresh(tokens.refreshToken)).accessToken;
    } catch (error) {
      if (error instanceof ApiError && error.code === ErrorCode.UNAUTHORIZED) {
        await this.store.save(undefined);
      }
      throw error;
    }
  }
}
