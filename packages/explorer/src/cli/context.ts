/** What every `loomtrace` command is given: where the database is (resolved once, by the caller). */
export interface CliContext {
  readonly databaseUrl: string;
}

export type CliCommand = {
  readonly summary: string;
  readonly load: () => Promise<{ run(args: string[], ctx: CliContext): Promise<number> }>;
};
