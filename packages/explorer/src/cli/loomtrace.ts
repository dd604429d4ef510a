#!/usr/bin/env node
/** The `loomtrace` bin: `npx loomtrace <command>` on DATABASE_URL. */
import { runCli } from './main.js';

process.exit(await runCli(process.argv.slice(2), { databaseUrl: process.env['DATABASE_URL'] || undefined }));
