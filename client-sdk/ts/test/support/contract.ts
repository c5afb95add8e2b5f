// The error contract's table, shared with the Rust SDK's suite (client-sdk/testdata/error-contract.json),
// and the check every server error decoded by the TypeScript SDK must pass.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { expect } from "vitest";

import { ApiError, ErrorCode, reasonOf } from "../../src/index.js";

interface ContractRow {
  readonly grpc: string;
  readonly grpcCode: number;
  readonly retryable: boolean;
  readonly metadata: readonly string[];
}

export const CONTRACT = (
  JSON.parse(readFileSync(resolve(import.meta.dirname, "..", "..", "..", "testdata", "error-contract.json"), "utf8")) as {
    codes: Record<string, ContractRow>;
  }
).codes;

/** Waits for `call` to fail and returns its error, which must be an ApiError. */
export async function failure(call: Promise<unknown>): Promise<ApiError> {
  const outcome = await call.then(
    (answer) => ({ answer }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) {
    throw new Error(`expected the call to fail, it answered ${JSON.stringify(outcome.answer, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
  }
  expect(outcome.error).toBeInstanceOf(ApiError);
  return outcome.error as ApiError;
}

/**
 * The server's error as the contract describes it: its code, the correlation id the SDK sent (a UUIDv7
 * unless the caller chose one) equal to the one the server logged, the gRPC code, the retryable flag with
 * RetryInfo, and the code's metadata.
 */
export function expectDecoded(code: ErrorCode, error: ApiError, sentCorrelationId?: string): void {
  const row = CONTRACT[reasonOf(code)];
  expect(row, `${reasonOf(code)} is in the contract table`).toBeDefined();
  expect({ code: reasonOf(error.code), origin: error.origin }).toEqual({ code: reasonOf(code), origin: "server" });
  if (sentCorrelationId === undefined) {
    expect(error.correlationId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  } else {
    expect(error.correlationId).toBe(sentCorrelationId);
  }
  expect(error.metadata["correlationId"], "the server logged this id").toBe(error.correlationId);
  expect(error.grpcCode).toBe(row!.grpcCode);
  expect({ retryable: error.retryable, retryInfo: error.retryAfter !== undefined }).toEqual({
    retryable: row!.retryable,
    retryInfo: row!.retryable,
  });
  for (const key of row!.metadata) {
    expect(error.metadata, `${reasonOf(code)} carries ${key}`).toHaveProperty(key);
  }
  expect(error.message).not.toBe("");
}
