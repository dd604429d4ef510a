#!/usr/bin/env node
/**
 * The `loomtrace` command line: `npm run cli -- <command> [args]` or `npx loomtrace <command>`.
 * Each command lives in src/cli/commands/<name>.ts and exports `run(args): Promise<number>`.
 */
type Command = { summary: string; load: () => Promise<{ run(args: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  // Each command registers one line here.
  why: { summary: 'why is a block (not) in search? `why block <id> [--json]`: declared steps, verdict, trace', load: () => import('./commands/why.js') },
  trace: { summary: 'a stored trace as a terminal waterfall: `trace <trace-id> [--json]`', load: () => import('./commands/trace.js') },
  events: { summary: 'outbox events by state (`events --dead`), or one event\'s replay (`events <id>`); --json', load: () => import('./commands/events.js') },
  rebuild: { summary: 'rebuild the search projection from the source of truth (all, or --library <id>), never regressing a version', load: () => import('./commands/rebuild.js') },
  replay: { summary: 'list dead-lettered events and replay them (who, when, why recorded)', load: () => import('./commands/replay.js') },
};

const [name, ...args] = process.argv.slice(2);
if (!name || name === 'help' || name === '--help' || !commands[name]) {
  if (name && name !== 'help' && name !== '--help') process.stderr.write(`loomtrace: unknown command "${name}"\n\n`);
  process.stdout.write('usage: loomtrace <command> [options]   (DATABASE_URL, or the embedded Postgres of `npm start`)\n\ncommands:\n');
  for (const [n, c] of Object.entries(commands)) process.stdout.write(`  ${n.padEnd(10)} ${c.summary}\n`);
  process.exit(name && name !== 'help' && name !== '--help' ? 2 : 0);
}
const { EmbeddedPasswordError } = await import('../db/embeddedPassword.js');
let code: number;
try {
  code = await (await commands[name]!.load()).run(args);
} catch (err) {
  // No DATABASE_URL and no embedded Postgres password to read: say what to do, no stack.
  if (!(err instanceof EmbeddedPasswordError)) throw err;
  process.stderr.write(`loomtrace: ${err.message}\n`);
  code = 2;
}
process.exit(code);
