// The error contract as the SDK hands it to callers: every failed call rejects with an `ApiError`, decoded
// from the standard gRPC rich error details (`grpc-status-details-bin`) the server sends.
import { Code, ConnectError } from "@connectrpc/connect";

import { ErrorCode } from "./gen/index.js";
import { BadRequestSchema, ErrorInfoSchema, RequestInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** The `ErrorInfo.domain` of Aerobook's own errors. */
const ERROR_DOMAIN = "aerobook";
export const CORRELATION_HEADER = "x-correlation-id";

/**
 * Where an error was decided.
 * - `server`: the server's error contract (ErrorInfo of domain `aerobook`): trust every field.
 * - `protocol`: a gRPC status without the contract's details (a proxy, an older server, an unknown
 *   method); the code is inferred from the gRPC code.
 * - `transport`: the connection failed or the answer was lost, so the server may have acted; the code
 *   is `SERVICE_UNAVAILABLE`.
 * - `client`: decided by the SDK itself, such as the call's deadline passing.
 */
export type ErrorOrigin = "server" | "protocol" | "transport" | "client";

export interface FieldViolation {
  /** The request field, as the server names it (`passengers[1].given_name`, `idempotency-key`). */
  readonly field: string;
  readonly description: string;
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  /** The contract's machine-readable code: switch on this. */
  readonly code: ErrorCode;
  /** The id of the call in the server's logs (the one the SDK sent): quote it to support. */
  readonly correlationId: string;
  /** Whether the same call may succeed later (the SDK has already repeated it within its retry policy). */
  readonly retryable: boolean;
  /** How long the server asked callers to wait before repeating, in milliseconds (`RetryInfo`). */
  readonly retryAfter: number | undefined;
  readonly fieldViolations: readonly FieldViolation[];
  /** `ErrorInfo.metadata`: `correlationId`, `retryable` and code-specific facts such as `seatsAvailable`. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly origin: ErrorOrigin;
  /** The gRPC status code of the answer. */
  readonly grpcCode: Code;

  constructor(fields: {
    code: ErrorCode;
    message: string;
    correlationId: string;
    retryable: boolean;
    retryAfter?: number | undefined;
    fieldViolations?: readonly FieldViolation[];
    metadata?: Readonly<Record<string, string>>;
    origin: ErrorOrigin;
    grpcCode: Code;
    cause?: unknown;
  }) {
    super(fields.message, { cause: fields.cause });
    this.code = fields.code;
    this.correlationId = fields.correlationId;
    this.retryable = fields.retryable;
    this.retryAfter = fields.retryAfter;
    this.fieldViolations = fields.fieldViolations ?? [];
    this.metadata = fields.metadata ?? {};
    this.origin = fields.origin;
    this.grpcCode = fields.grpcCode;
  }

  /** The code's contract name, such as `SEATS_UNAVAILABLE`. */
  get reason(): string {
    return reasonOf(this.code);
  }

  override toString(): string {
    return `${this.reason}: ${this.message} (correlation id ${this.correlationId})`;
  }

  /**
   * Decodes a failed call. `correlationId` is the id the call was sent with, used when the answer names
   * none. Also works on errors of plain Connect clients.
   */
  static from(error: unknown, correlationId = ""): ApiError {
    if (error instanceof ApiError) {
      return error;
    }
    const connectError = ConnectError.from(error);
    const answered = connectError.metadata.has("grpc-status");
    const headerId = connectError.metadata.get(CORRELATION_HEADER) ?? correlationId;
    const info = connectError.findDetails(ErrorInfoSchema).find((detail) => detail.domain === ERROR_DOMAIN);
    if (info === undefined) {
      // No grpc-status at all: the answer never arrived, or was not a gRPC answer.
      const origin = answered ? "protocol" : "transport";
      const code = answered ? codeOfPlainStatus(connectError.code) : ErrorCode.SERVICE_UNAVAILABLE;
      return new ApiError({
        code,
        message: connectError.rawMessage,
        correlationId: headerId,
        retryable: code === ErrorCode.SERVICE_UNAVAILABLE || code === ErrorCode.RATE_LIMITED,
        origin,
        grpcCode: connectError.code,
        cause: error,
      });
    }
    const retryDelay = connectError.findDetails(RetryInfoSchema)[0]?.retryDelay;
    const retryAfter =
      retryDelay === undefined ? undefined : Number(retryDelay.seconds) * 1000 + Math.round(retryDelay.nanos / 1e6);
    const retryableFlag = info.metadata["retryable"];
    const requestId = connectError.findDetails(RequestInfoSchema)[0]?.requestId;
    return new ApiError({
      code: codeOfReason(info.reason),
      message: connectError.rawMessage,
      correlationId: nonEmpty(info.metadata["correlationId"]) ?? nonEmpty(requestId) ?? headerId,
      retryable: retryableFlag === undefined ? retryAfter !== undefined : retryableFlag === "true",
      retryAfter,
      fieldViolations: connectError
        .findDetails(BadRequestSchema)
        .flatMap((bad) => bad.fieldViolations.map(({ field, description }) => ({ field, description }))),
      metadata: { ...info.metadata },
      origin: "server",
      grpcCode: connectError.code,
      cause: error,
    });
  }

  /** The call's deadline passed before an answer came (the SDK's own deadline, not the server's). */
  static deadlineExceeded(correlationId: string, timeoutMs: number, cause?: unknown): ApiError {
    return new ApiError({
      code: ErrorCode.DEADLINE_EXCEEDED,
      message: `the call did not finish within its ${timeoutMs} ms deadline`,
      correlationId,
      retryable: false,
      origin: "client",
      grpcCode: Code.DeadlineExceeded,
      cause,
    });
  }
}

export function reasonOf(code: ErrorCode): string {
  return ErrorCode[code] ?? "UNSPECIFIED";
}

function codeOfReason(reason: string): ErrorCode {
  const code = (ErrorCode as unknown as Record<string, ErrorCode | undefined>)[reason];
  return typeof code === "number" ? code : ErrorCode.UNSPECIFIED;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** The contract code closest to a bare gRPC status (the same table as the Rust SDK's). */
function codeOfPlainStatus(code: Code): ErrorCode {
  switch (code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return ErrorCode.VALIDATION_ERROR;
    case Code.Unauthenticated:
      return ErrorCode.UNAUTHORIZED;
    case Code.PermissionDenied:
      return ErrorCode.FORBIDDEN;
    case Code.NotFound:
      return ErrorCode.NOT_FOUND;
    case Code.ResourceExhausted:
      return ErrorCode.RATE_LIMITED;
    case Code.Unavailable:
      return ErrorCode.SERVICE_UNAVAILABLE;
    case Code.DeadlineExceeded:
      return ErrorCode.DEADLINE_EXCEEDED;
    default:
      return ErrorCode.INTERNAL_ERROR;
  }
}
