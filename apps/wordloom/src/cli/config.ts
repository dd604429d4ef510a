import path from 'node:path';
import { EmbeddedPasswordError, passwordFileFor, readPasswordFile } from '../db/embeddedPassword.js';

/**
 * Process configuration, read from the environment once, validated with a precise message,
 * and frozen. Nothing else reads process.env.
 */
export interface ProcessConfig {
  readonly databaseUrl: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  readonly worker: {
    readonly id: string | undefined;
    readonly batchSize: number;
    readonly concurrency: number;
    readonly leaseMs: number;
    readonly pollIntervalMs: number;
    readonly maxAttempts: number;
    readonly shutdownGraceMs: number;
    readonly presence: boolean;
  };
}

/** The database `npm start` creates on its embedded Postgres; CLI commands use it when DATABASE_URL is not set. */
export const EMBEDDED_DATABASE = 'wordloom';
/** The embedded Postgres cluster folder under the data directory. */
export const embeddedPgDir = (dataDir: string) => path.join(dataDir, 'pg');
/** The embedded Postgres of `npm start`, with the password it keeps in `<dataDir>/pg.password`. */
export function embeddedUrl(config: Pick<ProcessConfig, 'dataDir' | 'embeddedPgPort'>): string {
  const file = passwordFileFor(embeddedPgDir(config.dataDir));
  const password = readPasswordFile(file);
  if (!password) throw new EmbeddedPasswordError(`no embedded Postgres password in ${file}: run \`npm start\` first (LOOMTRACE_DATA_DIR=${config.dataDir}), or set DATABASE_URL`);
  return `postgres://postgres:${password}@127.0.0.1:${config.embeddedPgPort}/${EMBEDDED_DATABASE}`;
}

/** A boolean from the environment (true/false/1/0), its default when unset, or a precise error. */
export function envBool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, got "${env[name]}"`);
}

/** An integer from the environment, its default when unset, or a precise error. */
export function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return v;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ProcessConfig {
  return Object.freeze({
    databaseUrl: env['DATABASE_URL'] || undefined,
    host: env['HOST'] || '127.0.0.1',
    port: envInt(env, 'PORT', 3000, 0, 65535),
    dataDir: path.resolve(env['LOOMTRACE_DATA_DIR'] || '.loomtrace'),
    embeddedPgPort: envInt(env, 'LOOMTRACE_PG_PORT', 54329, 1, 65535),
    worker: Object.freeze({
      id: env['WORKER_ID'] || undefined,
      batchSize: envInt(env, 'WORKER_BATCH_SIZE', 500, 1, 10_000),
      concurrency: envInt(env, 'WORKER_CONCURRENCY', 2, 1, 64),
      leaseMs: envInt(env, 'WORKER_LEASE_MS', 30_000, 100, 86_400_000),
      pollIntervalMs: envInt(env, 'WORKER_POLL_MS', 1_000, 10, 3_600_000),
      maxAttempts: envInt(env, 'WORKER_MAX_ATTEMPTS', 10, 1, 1_000),
      shutdownGraceMs: envInt(env, 'WORKER_SHUTDOWN_GRACE_MS', 10_000, 0, 3_600_000),
      // Off behind a transaction-pooling PgBouncer: session advisory locks mean nothing there.
      presence: envBool(env, 'WORKER_PRESENCE', true),
    }),
  });
}
