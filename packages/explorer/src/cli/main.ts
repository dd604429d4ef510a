/**
 * The `loomtrace` command line as a function: the explorer's own commands, plus any an
 * application adds (Wordloom adds `rebuild`). The `loomtrace` bin calls it with DATABASE_URL.
 */
import type { CliCommand, CliContext, PipelineFactory } from './context.js';

export const COMMANDS: Readonly<Record<string, CliCommand>> = Object.freeze({
  why: { summary: 'why is an aggregate (not) in its projection? `why <aggregate-type> <id> [--projection P] [--version N] [--json] [--width N]`; exit 0 when it holds the current version', load: () => import('./commands/why.js') },
  check: { summary: 'does a change\'s trace have the declared shape? `check <aggregate-type> <id> | --trace <id> | --file <otlp.json>`; exit 0 when it does', load: () => import('./commands/check.js'), databaseOptional: true },
  probe: { summary: 'a canary change through a declared pipeline, until visible, trace shape checked; `--once` (exit 0/1) or on a schedule with Prometheus metrics', load: () => import('./commands/probe.js') },
  trace: { summary: 'a stored trace as a terminal waterfall: `trace <trace-id> [--json] [--width N]`', load: () => import('./commands/trace.js') },
  events: { summary: "outbox events by state (`events --dead`), or one event's replay (`events <id>`); --json, --width N (lines fit $COLUMNS or 80 by default)", load: () => import('./commands/events.js') },
  replay: { summary: 'list dead-lettered events and replay them (who, when, why recorded)', load: () => import('./commands/replay.js') },
});

export interface CliOptions {
  /** The database holding the loomtrace outbox (and the explorer's span store); undefined prints a clear error. */
  readonly databaseUrl: string | undefined;
  /** Commands an application adds next to the explorer's. */
  readonly extraCommands?: Readonly<Record<string, CliCommand>>;
  /** The application's declared pipelines (for `why`, `check`, `probe`); none: those commands say so. */
  readonly pipelines?: PipelineFactory;
  /** How the usage line names where the database comes from. */
  readonly databaseHint?: string;
}

/** Runs one command; resolves to the process exit code. */
export async function runCli(argv: readonly string[], options: CliOptions): Promise<number> {
  const commands: Record<string, CliCommand> = { ...COMMANDS, ...options.extraCommands };
  const [name, ...args] = argv;
  const help = !name || name === 'help' || name === '--help';
  if (help || !commands[name]) {
    if (!help) process.stderr.write(`loomtrace: unknown command "${name}"\n\n`);
    process.stdout.write(`usage: loomtrace <command> [options]   (${options.databaseHint ?? 'DATABASE_URL'})\n\ncommands:\n`);
    for (const [n, c] of Object.entries(commands)) process.stdout.write(`  ${n.padEnd(10)} ${c.summary}\n`);
    return help ? 0 : 2;
  }
  if (!options.databaseUrl && !commands[name]!.databaseOptional) {
    process.stderr.write('loomtrace: set DATABASE_URL to the database that holds the loomtrace outbox\n');
    return 2;
  }
  const ctx: CliContext = { databaseUrl: options.databaseUrl ?? '', pipelines: options.pipelines ?? (() => []) };
  return (await commands[name]!.load()).run(args, ctx);
}
export type { CliCommand, CliContext, PipelineFactory } from './context.js';
