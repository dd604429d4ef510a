#!/usr/bin/env node
/**
 * `npm run cli -- <command>`: the explorer's `loomtrace` commands plus Wordloom's `rebuild`, on
 * DATABASE_URL or, without it, the embedded Postgres that `npm start` runs (its password read
 * from the data directory).
 */
import { runCli } from '@loomtrace/explorer/cli';
import { embeddedUrl, loadConfig } from './config.js';
import { EmbeddedPasswordError } from '../db/embeddedPassword.js';
import { loadOpsConfig } from './metrics.js';
import { wordloomPipelines } from '../pipeline.js';

const config = loadConfig();
/** Where to reach the API bound on `host` (a wildcard bind is reached on loopback). */
const probeHost = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h);
let ops: ReturnType<typeof loadOpsConfig>;
try {
  ops = loadOpsConfig();
} catch (err) {
  process.stderr.write(`loomtrace: ${(err as Error).message}\n`);
  process.exit(2);
}
// Closed when the process exits (the command's pool ends first; a cluster client holds sockets).
const declared: { close(): Promise<void> }[] = [];
const argv = process.argv.slice(2);
let databaseUrl = config.databaseUrl;
// `check --file` reads a capture: it needs no database.
const wantsHelp = argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || (argv[0] === 'check' && argv.includes('--file'));
if (!databaseUrl && !wantsHelp) {
  try {
    databaseUrl = embeddedUrl(config);
  } catch (err) {
    // No DATABASE_URL and no embedded Postgres password to read: say what to do, no stack.
    if (!(err instanceof EmbeddedPasswordError)) throw err;
    process.stderr.write(`loomtrace: ${err.message}\n`);
    process.exit(2);
  }
}
const code = await runCli(argv, {
  databaseUrl,
  pipelines: (pool) => {
    // The probe's canary goes through the API: LOOMTRACE_PROBE_API_URL, or HOST:PORT.
    const w = wordloomPipelines(pool, ops.search, process.env['LOOMTRACE_PROBE_API_URL'] || `http://${probeHost(config.host)}:${config.port}`);
    declared.push(w);
    return w.pipelines;
  },
  databaseHint: 'DATABASE_URL, or the embedded Postgres of `npm start`',
  extraCommands: {
    rebuild: { summary: 'rebuild the search projection from the source of truth (all, or --library <id>), never regressing a version', load: () => import('./commands/rebuild.js') },
  },
  });
await Promise.all(declared.map((d) => d.close().catch(() => undefined)));
process.exit(code);
