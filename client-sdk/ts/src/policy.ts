// The contract's policy for one RPC, read from the generated descriptors: the `(aerobook.v1.policy)` method
// option and the standard `idempotency_level`. The server reads the same options; nothing here is a list.
import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";

import { policy, type RateLimitClass, type Role } from "./gen/index.js";

export interface CallPolicy {
  /** Anyone may call: no access token is sent. */
  readonly public: boolean;
  /** Roles allowed to call; empty on a non-public RPC means any signed-in caller. */
  readonly roles: readonly Role[];
  /** Every call carries an `idempotency-key` header; the SDK makes one when the caller gives none. */
  readonly idempotencyKeyRequired: boolean;
  readonly rateLimit: RateLimitClass;
  readonly idempotency: MethodOptions_IdempotencyLevel;
  /**
   * Whether a call may be sent again after the connection failed before its answer: reads
   * (`NO_SIDE_EFFECTS`), calls declared `IDEMPOTENT`, and calls that carry an idempotency key.
   */
  readonly safeToRepeat: boolean;
}

const policies = new WeakMap<DescMethod, CallPolicy>();

/** The policy declared on `method`; throws for an RPC that declares none (the proto build forbids that). */
export function policyOf(method: DescMethod): CallPolicy {
  let known = policies.get(method);
  if (known === undefined) {
    if (!hasOption(method, policy)) {
      throw new Error(`${method.parent.typeName}.${method.name} declares no (aerobook.v1.policy)`);
    }
    const declared = getOption(method, policy);
    const idempotency = method.idempotency;
    known = {
      public: declared.public,
      roles: declared.roles,
      idempotencyKeyRequired: declared.idempotencyKeyRequired,
      rateLimit: declared.rateLimit,
      idempotency,
      safeToRepeat: declared.idempotencyKeyRequired || idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
    };
    policies.set(method, known);
  }
  return known;
}
