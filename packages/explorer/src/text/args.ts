/** Tiny argument helpers for the explorer's CLI commands. */
export function flag(args: readonly string[], name: string): boolean {
  return args.includes(name);
}

export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Positional arguments: not flags, not the values of `withValues` options. */
export function positional(args: readonly string[], withValues: readonly string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (withValues.includes(a)) i++;
    else if (!a.startsWith('--')) out.push(a);
  }
  return out;
}

/** The embedded Postgres URL `npm start` uses, for commands run without DATABASE_URL. */
