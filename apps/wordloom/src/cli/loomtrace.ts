#!/usr/bin/env node
/**
 * `npm run cli -- <command>`: the explorer's `loomtrace` commands plus Wordloom's `rebuild`, on
 * DATABASE_URL or, without it, the embedded Postgres that `npm start` runs.
 */
import { runCli } from '@loomtrace/explorer/cli';
import { embeddedUrl, loadConfig } from './config.js';

const config = loadConfig();
process.exit(
  await runCli(process.argv.slice(2), {
    databaseUrl: config.databaseUrl ?? embeddedUrl(config.embeddedPgPort),
    databaseHint: 'DATABASE_URL, or the embedded Postgres of `npm start`',
    extraCommands: {
      rebuild: { summary: 'rebuild the search projection from the source of truth (all, or --library <id>), never regressing a version', load: () => import('./commands/rebuild.js') },
    },
  }),
);
