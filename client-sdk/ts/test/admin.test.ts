// The job queue's AdminService through the SDK against the real server, over gRPC and gRPC-web, on every
// backend: operators read the queue and retry jobs (RetryJob carries the idempotency key the SDK makes from
// the proto's policy); customers and anonymous callers are refused.
import type { Interceptor } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";

import { ErrorCode, JobState, NEVER_RETRY, type Job } from "../src/index.js";
import { expectDecoded, failure } from "./support/contract.js";
import { MATRIX, PASSWORD, clientFor, operatorFor, signUp, uniqueEmail } from "./support/fixtures.js";
import { serverPerSuite } from "./support/server.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KINDS = ["SEND_EMAIL", "APPLY_PROVIDER_EVENT", "SEND_REFUND"];

/** Records the `idempotency-key` header of every `method` request the client sends. */
function keysOf(...methods: string[]) {
  const keys: (string | null)[] = [];
  const interceptor: Interceptor = (next) => (request) => {
    if (methods.includes(request.method.localName)) {
      keys.push(request.header.get("idempotency-key"));
    }
    return next(request);
  };
  return { keys, interceptor };
}

function expectWellFormed(job: Job): void {
  expect(job.id).toMatch(UUID);
  expect(KINDS).toContain(job.kind);
  expect(job.state).not.toBe(JobState.UNSPECIFIED);
  expect(job.attempts).toBeGreaterThanOrEqual(0);
  expect(job.createdAt).toBeDefined();
}

describe.each(MATRIX)("on %s over %s", (backend, transport) => {
  const server = serverPerSuite(backend);

  it("shows an operator the queue's counts and its jobs, newest first", async () => {
    const operator = await operatorFor(server(), transport);

    const stats = await operator.admin.getQueueStats({});
    for (const count of [stats.queued, stats.running, stats.failed, stats.dead]) {
      expect(typeof count).toBe("bigint");
      expect(count).toBeGreaterThanOrEqual(0n);
    }

    const { jobs } = await operator.admin.listJobs({});
    expect(Array.isArray(jobs)).toBe(true);
    jobs.forEach(expectWellFormed);
    const created = jobs.map((job) => job.createdAt!.seconds);
    expect(created).toEqual([...created].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));

    const dead = await operator.admin.listJobs({ state: JobState.DEAD, pageSize: 100 });
    expect(dead.jobs.every((job) => job.state === JobState.DEAD)).toBe(true);
  });

  it("sends RetryJob with an idempotency key of its own and decodes the server's refusals", async () => {
    const { keys, interceptor } = keysOf("retryJob");
    const email = uniqueEmail("operator");
    server().admin("create-operator", "--email", email, "--password", PASSWORD);
    const watched = clientFor(server(), transport, { interceptors: [interceptor], retry: NEVER_RETRY });
    await watched.auth.login({ email, password: PASSWORD });

    expectDecoded(ErrorCode.NOT_FOUND, await failure(watched.admin.retryJob({ jobId: crypto.randomUUID() })));
    const invalid = await failure(watched.admin.retryJob({ jobId: "not-a-uuid" }));
    expectDecoded(ErrorCode.VALIDATION_ERROR, invalid);
    expect(invalid.fieldViolations.map((violation) => violation.field)).toContain("job_id");

    // The proto marks RetryJob `idempotency_key_required`: the SDK made one key per call, unasked.
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(key).toMatch(/^sdk-/);
    }
    expect(keys[1]).not.toBe(keys[0]);

    // A caller's own key is sent as given.
    const own = `ts-retry-${crypto.randomUUID()}`;
    expectDecoded(ErrorCode.NOT_FOUND, await failure(watched.admin.retryJob({ jobId: crypto.randomUUID() }, { idempotencyKey: own })));
    expect(keys[2]).toBe(own);
  });

  it("sends DiscardJob and RetryJobs with keys of their own and names a bad bulk state", async () => {
    const { keys, interceptor } = keysOf("discardJob", "retryJobs");
    const email = uniqueEmail("operator");
    server().admin("create-operator", "--email", email, "--password", PASSWORD);
    const watched = clientFor(server(), transport, { interceptors: [interceptor], retry: NEVER_RETRY });
    await watched.auth.login({ email, password: PASSWORD });

    expectDecoded(ErrorCode.NOT_FOUND, await failure(watched.admin.discardJob({ jobId: crypto.randomUUID() })));
    const retried = await watched.admin.retryJobs({ state: JobState.DISCARDED, kind: "SEND_EMAIL" });
    expect(retried.retried).toBe(0n);
    const invalid = await failure(watched.admin.retryJobs({ state: JobState.DONE }));
    expectDecoded(ErrorCode.VALIDATION_ERROR, invalid);
    expect(invalid.fieldViolations.map((violation) => violation.field)).toEqual(["state"]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(3);
    for (const key of keys) {
      expect(key).toMatch(/^sdk-/);
    }
  });

  it("refuses customers with FORBIDDEN and anonymous callers with UNAUTHORIZED", async () => {
    const customer = clientFor(server(), transport, { retry: NEVER_RETRY });
    await signUp(customer);
    expectDecoded(ErrorCode.FORBIDDEN, await failure(customer.admin.getQueueStats({})));
    expectDecoded(ErrorCode.FORBIDDEN, await failure(customer.admin.listJobs({})));
    expectDecoded(ErrorCode.FORBIDDEN, await failure(customer.admin.retryJob({ jobId: crypto.randomUUID() })));

    const anonymous = clientFor(server(), transport, { retry: NEVER_RETRY });
    expectDecoded(ErrorCode.UNAUTHORIZED, await failure(anonymous.admin.getQueueStats({})));
  });
});
