// The Aerobook client: one typed client per service of the contract, found in the generated code, and the
// call pipeline every RPC goes through (correlation id, idempotency key, access token and its renewal,
// retries, deadline, typed errors). What each RPC needs comes from its options (see policy.ts).
import {
  isMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { createClient, type CallOptions as ConnectCallOptions, type Transport } from "@connectrpc/connect";

import { ApiError, CORRELATION_HEADER } from "./errors.js";
import * as api from "./gen/index.js";
import { newIdempotencyKey, uuidv7 } from "./ids.js";
import { policyOf, type CallPolicy } from "./policy.js";
import { DEFAULT_RETRY_POLICY, delayAfter, pause, type RetryPolicy } from "./retry.js";
import { MemoryTokenStore, Session, tokensOf, type TokenStore, type Tokens } from "./session.js";

const IDEMPOTENCY_HEADER = "idempotency-key";
const REPLAYED_HEADER = "idempotent-replayed";

/** Unary calls end with `DEADLINE_EXCEEDED` after this long, repeats included, unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  /** Where the session's tokens live (default: memory). */
  readonly tokenStore?: TokenStore;
  /** When failed calls are repeated (default: `DEFAULT_RETRY_POLICY`; `NEVER_RETRY` turns it off). */
  readonly retry?: RetryPolicy;
  /**
   * Deadline of unary calls in milliseconds, repeats and waits included (default 30 s); 0 means none.
   * Server streams have a deadline only when a call sets `timeoutMs`.
   */
  readonly timeoutMs?: number;
}

/** Connect's call options, plus the contract's headers and the retry policy, per call. */
export interface CallOptions extends ConnectCallOptions {
  /** Sent as `x-correlation-id` (default: a new UUIDv7); the same for every repeat of the call. */
  readonly correlationId?: string;
  /**
   * Overrides the key the SDK makes for RPCs that require one. A key is kept for every repeat of one
   * call; pass the same key again to make a later call a replay of an earlier one.
   */
  readonly idempotencyKey?: string;
  readonly retry?: RetryPolicy;
  /** Called once with the answer's headers when a unary call succeeds. */
  readonly onResponse?: (response: ResponseInfo) => void;
}

export interface ResponseInfo {
  /** The id the call was sent with (the server echoes it in `x-correlation-id`). */
  readonly correlationId: string;
  /** The server answered with the saved result of an earlier call with the same idempotency key. */
  readonly replayed: boolean;
  readonly header: Headers;
}

/** A typed client of one service: Connect's shape, with the SDK's call options. */
export type ServiceClient<S extends DescService> = {
  readonly [P in keyof S["method"]]: S["method"][P] extends DescMethodUnary<infer I, infer O>
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : S["method"][P] extends DescMethodServerStreaming<infer I, infer O>
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : never;
};

type Api = typeof api;
type ServiceExport = { [K in keyof Api]: Api[K] extends DescService ? K : never }[keyof Api];
type AccessorOf<Name> = Name extends `${infer Stem}Service` ? Uncapitalize<Stem> : never;

/** Every service of the contract, by accessor: `AuthService` is `auth`, `WaitingRoomService` `waitingRoom`. */
export type Services = { readonly [K in ServiceExport as AccessorOf<K>]: ServiceClient<Api[K]> };

export type AerobookClient = Services & {
  /** The session's tokens, if signed in. Register, Login and RefreshToken answers become the session. */
  tokens(): Promise<Tokens | undefined>;
  /** Replaces the session (for tokens obtained elsewhere), or ends it with `undefined`. */
  setTokens(tokens: Tokens | undefined): Promise<void>;
  /**
   * Ends the session: forgets the tokens at once, then asks the server to revoke the refresh token. The
   * local session ends even when that call fails.
   */
  signOut(): Promise<void>;
};

/** A client over any Connect transport; `createWebClient` and `createNodeClient` pick one for you. */
export function createAerobookClient(transport: Transport, options: ClientOptions = {}): AerobookClient {
  // The session refreshes through the client's own RefreshToken, whose answer `#accept` saves.
  const session = new Session(options.tokenStore ?? new MemoryTokenStore(), (refreshToken) =>
    services.auth.refreshToken({ refreshToken }),
  );
  const pipeline = new Pipeline(transport, session, options);
  const services = Object.fromEntries(
    (Object.entries(api) as [string, unknown][])
      .filter((entry): entry is [string, DescService] => isService(entry[1]))
      .map(([name, service]) => [accessorOf(name), pipeline.bind(service)]),
  ) as unknown as Services;
  return {
    ...services,
    tokens: () => session.tokens(),
    setTokens: (tokens) => session.save(tokens),
    async signOut() {
      const refreshToken = (await session.tokens())?.refreshToken;
      await session.save(undefined);
      if (refreshToken !== undefined) {
        await services.auth.logout({ refreshToken });
      }
    },
  };
}

function isService(value: unknown): value is DescService {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "service";
}

function accessorOf(exportName: string): string {
  const stem = exportName.replace(/Service$/, "");
  return stem.charAt(0).toLowerCase() + stem.slice(1);
}

/** What one logical call keeps across its attempts. */
interface CallState {
  readonly correlationId: string;
  readonly headers: Headers;
  readonly deadline: { readonly at: number; readonly timeoutMs: number } | undefined;
}

class Pipeline {
  readonly #transport: Transport;
  readonly #session: Session;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;

  constructor(transport: Transport, session: Session, options: ClientOptions) {
    this.#transport = transport;
    this.#session = session;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The service's methods, each sending through Connect's own client for the service. */
  bind(service: DescService): Record<string, unknown> {
    const connect = createClient(service, this.#transport) as unknown as { [localName: string]: never };
    return Object.fromEntries(
      service.methods.map((method) => {
        const send = connect[method.localName] as never;
        switch (method.methodKind) {
          case "unary":
            return [method.localName, (request: never, options?: CallOptions) => this.unary(method as DescMethodUnary, request, options, send)];
          case "server_streaming":
            return [method.localName, (request: never, options?: CallOptions) => this.stream(method as DescMethodServerStreaming, request, options, send)];
          case "client_streaming":
          case "bidi_streaming":
            throw new Error(`${method.parent.typeName}.${method.name}: ${method.methodKind} RPCs are not supported`);
        }
      }),
    );
  }

  async unary<I extends DescMethodUnary>(
    method: I,
    request: MessageInitShape<I["input"]>,
    options: CallOptions = {},
    send: (request: MessageInitShape<I["input"]>, options?: ConnectCallOptions) => Promise<MessageShape<I["output"]>>,
  ): Promise<MessageShape<I["output"]>> {
    const policy = policyOf(method);
    const call = this.#begin(policy, options, options.timeoutMs ?? this.#timeoutMs);
    const retry = options.retry ?? this.#retry;
    let failures = 0;
    let renewed = false;
    for (;;) {
      const accessToken = policy.public ? undefined : await this.#session.accessToken();
      let header = new Headers();
      let error: ApiError;
      try {
        const answer = await send(request, {
          ...attemptOptions(options, call, accessToken),
          onHeader: (received) => {
            header = received;
            options.onHeader?.(received);
          },
        });
        await this.#accept(answer);
        options.onResponse?.({
          correlationId: call.correlationId,
          replayed: header.get(REPLAYED_HEADER) === "true",
          header,
        });
        return answer;
      } catch (thrown) {
        error = this.#failure(thrown, call, options.signal);
      }
      if (error.code === api.ErrorCode.TOKEN_EXPIRED && accessToken !== undefined && !renewed) {
        // Renewing is part of signing in, not a repeat: it does not count against the retry policy.
        renewed = true;
        await this.#session.refreshAfter(accessToken, error);
        continue;
      }
      failures += 1;
      const wait = delayAfter(retry, failures, error, policy.safeToRepeat, timeLeft(call), Math.random());
      if (wait === undefined) {
        throw error;
      }
      await pause(wait, options.signal);
    }
  }

  /**
   * A server stream. Errors arrive as `ApiError`s while iterating. A stream refused at once with
   * `TOKEN_EXPIRED` is opened again after renewing the token; a stream that breaks later is not
   * re-opened: subscribe again (the first message of every stream is the current state).
   */
  async *stream<I extends DescMethodServerStreaming>(
    method: I,
    request: MessageInitShape<I["input"]>,
    options: CallOptions = {},
    open: (request: MessageInitShape<I["input"]>, options?: ConnectCallOptions) => AsyncIterable<MessageShape<I["output"]>>,
  ): AsyncGenerator<MessageShape<I["output"]>> {
    const policy = policyOf(method);
    const call = this.#begin(policy, options, options.timeoutMs ?? 0);
    let renewed = false;
    for (;;) {
      const accessToken = policy.public ? undefined : await this.#session.accessToken();
      let delivered = false;
      try {
        const messages = open(request, attemptOptions(options, call, accessToken));
        for await (const message of messages) {
          delivered = true;
          yield message;
        }
        return;
      } catch (thrown) {
        const error = this.#failure(thrown, call, options.signal);
        if (delivered || renewed || error.code !== api.ErrorCode.TOKEN_EXPIRED || accessToken === undefined) {
          throw error;
        }
        renewed = true;
        await this.#session.refreshAfter(accessToken, error);
      }
    }
  }

  /** The headers and deadline of one logical call, fixed before its first attempt. */
  #begin(policy: CallPolicy, options: CallOptions, timeoutMs: number): CallState {
    const correlationId = options.correlationId ?? uuidv7();
    const headers = new Headers(options.headers);
    headers.set(CORRELATION_HEADER, correlationId);
    const key = options.idempotencyKey ?? (policy.idempotencyKeyRequired ? newIdempotencyKey() : undefined);
    if (key !== undefined) {
      headers.set(IDEMPOTENCY_HEADER, key);
    }
    const deadline = timeoutMs > 0 ? { at: Date.now() + timeoutMs, timeoutMs } : undefined;
    return { correlationId, headers, deadline };
  }

  /** The error a failed attempt ends in; the caller's own abort is passed through as its reason. */
  #failure(thrown: unknown, call: CallState, signal: AbortSignal | undefined): ApiError {
    if (signal?.aborted === true) {
      throw signal.reason;
    }
    const error = ApiError.from(thrown, call.correlationId);
    if (call.deadline !== undefined && Date.now() >= call.deadline.at && error.origin !== "server") {
      return ApiError.deadlineExceeded(call.correlationId, call.deadline.timeoutMs, thrown);
    }
    return error;
  }

  /** Keeps the session in step with authentication answers. */
  async #accept(answer: unknown): Promise<void> {
    if (isMessage(answer, api.AuthTokensSchema)) {
      await this.#session.save(tokensOf(answer));
    } else if (isMessage(answer, api.LogoutResponseSchema)) {
      await this.#session.save(undefined);
    }
  }
}

/** Connect's options for one attempt: the call's headers with the current token, and the time left. */
function attemptOptions(options: CallOptions, call: CallState, accessToken: string | undefined): ConnectCallOptions {
  const headers = new Headers(call.headers);
  if (accessToken !== undefined) {
    headers.set("authorization", `Bearer ${accessToken}`);
  }
  const left = timeLeft(call);
  return { ...options, headers, ...(left === undefined ? {} : { timeoutMs: left }) };
}

/** Milliseconds left before the call's deadline (at least 1: Connect reads 0 as "no deadline"). */
function timeLeft(call: CallState): number | undefined {
  return call.deadline === undefined ? undefined : Math.max(call.deadline.at - Date.now(), 1);
}
