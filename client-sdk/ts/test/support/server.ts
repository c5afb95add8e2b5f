// Runs the real aerobook-server binary for the SDK's tests: on port 0, in a fresh data directory, on the
// embedded defaults or (the "external" backend) on DATABASE_URL in a fresh schema and REDIS_URL under a
// fresh key prefix, like the Rust suite's TestApp.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

import { afterAll, beforeAll } from "vitest";

export type Backend = "embedded" | "external";

/** The backends this run covers: always the embedded one, and the real servers when configured. */
export const BACKENDS: Backend[] = process.env["DATABASE_URL"] ? ["embedded", "external"] : ["embedded"];

/** The server's token signing key in tests, so a test can make a token the server will call expired. */
export const JWT_SECRET = "sdk-tests-signing-key-0123456789abcdef0123456789";

const repository = resolve(import.meta.dirname, "..", "..", "..", "..");
const binary = process.env["AEROBOOK_SERVER_BIN"] ?? join(repository, "target", "debug", "aerobook-server");

export interface TestServer {
  /** `http://127.0.0.1:<port>`: gRPC, gRPC-web and HTTP on one port. */
  readonly url: string;
  readonly backend: Backend;
  /** Runs an `aerobook-server admin ...` command against this server's database; returns its output. */
  admin(...args: string[]): string;
  /** Runs SQL against this server's database (for the few failures no API call can cause). */
  sql(statement: string): void;
  stop(): Promise<void>;
}

export async function startServer(backend: Backend, settings: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "aerobook-sdk-"));
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "",
    AEROBOOK_LISTEN_ADDR: "127.0.0.1:0",
    AEROBOOK_DATA_DIR: dataDir,
    AEROBOOK_LOG_FORMAT: "json",
    AEROBOOK_JWT_SECRET: JWT_SECRET,
    AEROBOOK_SEED_DEMO_DATA: "true",
    AEROBOOK_SIMULATED_PAYMENT_DELAY_MS: "0",
    // The tests' clients keep their connections open: stopping should not wait for them to leave.
    AEROBOOK_SHUTDOWN_GRACE_SECONDS: "0",
    RUST_LOG: "info",
  };
  let schema: string | undefined;
  if (backend === "external") {
    const databaseUrl = required("DATABASE_URL");
    schema = `ts_${crypto.randomUUID().replaceAll("-", "")}`;
    psql(databaseUrl, `CREATE SCHEMA ${schema}`);
    // Outside the embedded defaults, simulated payments must be asked for.
    Object.assign(env, { DATABASE_URL: databaseUrl, AEROBOOK_DATABASE_SCHEMA: schema, AEROBOOK_PAYMENTS: "simulated" });
    if (process.env["REDIS_URL"]) {
      Object.assign(env, { REDIS_URL: process.env["REDIS_URL"], AEROBOOK_REDIS_KEY_PREFIX: `${schema}:` });
    }
  }
  Object.assign(env, settings);

  const child = spawn(binary, [], { env, stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const address = await new Promise<string>((resolveAddress, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`aerobook-server exited with ${code}:\n${log.join("\n")}`)));
    for (const output of [child.stdout, child.stderr]) {
      createInterface({ input: output }).on("line", (line) => {
        log.push(line);
        const localAddr = listening(line);
        if (localAddr !== undefined) {
          resolveAddress(localAddr);
        }
      });
    }
  });
  child.removeAllListeners("exit");

  return {
    url: `http://${address}`,
    backend,
    admin: (...args) => execFileSync(binary, ["admin", ...args], { env, encoding: "utf8" }),
    sql(statement) {
      if (schema === undefined) {
        execFileSync("python3", ["-c", SQLITE_EXEC, join(dataDir, "aerobook.db"), statement]);
      } else {
        psql(required("DATABASE_URL"), `SET search_path TO ${schema}; ${statement}`);
      }
    },
    async stop() {
      await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
      if (schema !== undefined) {
        psql(required("DATABASE_URL"), `DROP SCHEMA ${schema} CASCADE`);
      }
    },
  };
}

/** Node 20 has no SQLite module; Python's runs one statement on the server's database file. */
const SQLITE_EXEC = "import sqlite3, sys\nwith sqlite3.connect(sys.argv[1]) as db:\n    db.execute(sys.argv[2])";

function listening(line: string): string | undefined {
  try {
    const event = JSON.parse(line) as { local_addr?: string; message?: string };
    return event.message?.startsWith("serving") === true ? event.local_addr : undefined;
  } catch {
    return undefined;
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) {
    return Promise.resolve();
  }
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGTERM");
  });
}

function psql(databaseUrl: string, statement: string): void {
  execFileSync("psql", [databaseUrl, "-v", "ON_ERROR_STOP=1", "-q", "-c", `SET client_min_messages TO warning; ${statement}`]);
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set for the external backend`);
  }
  return value;
}

/** A server for the enclosing `describe`, started before its tests and stopped after them. */
export function serverPerSuite(backend: Backend, settings: Record<string, string> = {}): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startServer(backend, settings);
  });
  afterAll(() => server?.stop());
  return () => {
    if (server === undefined) {
      throw new Error("the suite's server has not started");
    }
    return server;
  };
}
