// Browsers and React Native: gRPC-web over `fetch`, the protocol the server's tonic-web layer speaks on its
// one port. The server must list the page's origin in AEROBOOK_CORS_ORIGINS.
import type { Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { createAerobookClient, type AerobookClient, type ClientOptions } from "./client.js";
import type { TokenStore, Tokens } from "./session.js";

export interface WebClientOptions extends ClientOptions {
  /** A `fetch` of your own (tests, React Native polyfills); default: the global one. */
  readonly fetch?: typeof globalThis.fetch;
  /** Connect interceptors, run for every attempt the SDK sends (logging, metrics, fault injection). */
  readonly interceptors?: Interceptor[];
}

/** A client calling `baseUrl` (such as `https://api.example.com`) over gRPC-web, binary format. */
export function createWebClient(baseUrl: string, options: WebClientOptions = {}): AerobookClient {
  const transport = createGrpcWebTransport({
    baseUrl,
    useBinaryFormat: true,
    interceptors: options.interceptors ?? [],
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  });
  return createAerobookClient(transport, options);
}

/**
 * Keeps the session in a Web Storage area. `sessionStorage` survives reloads but not the tab; anything a
 * script on the page can read, an injected script can read too, so keep the page free of third-party code.
 */
export function webStorageTokenStore(storage: Storage, key = "aerobook.session"): TokenStore {
  return {
    load(): Tokens | undefined {
      const saved = storage.getItem(key);
      if (saved === null) {
        return undefined;
      }
      const { accessToken, refreshToken, accessTokenExpiresAt } = JSON.parse(saved) as {
        accessToken: string;
        refreshToken?: string;
        accessTokenExpiresAt?: string;
      };
      return {
        accessToken,
        refreshToken,
        accessTokenExpiresAt: accessTokenExpiresAt === undefined ? undefined : new Date(accessTokenExpiresAt),
      };
    },
    save(tokens: Tokens | undefined): void {
      if (tokens === undefined) {
        storage.removeItem(key);
      } else {
        storage.setItem(key, JSON.stringify(tokens));
      }
    },
  };
}

export * from "./index.js";
