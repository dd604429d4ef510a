import type { Pipeline, Pool } from '@loomtrace/outbox';

/** The pipelines an application declares, made over the pool a command opens. */
export type PipelineFactory = (pool: Pool) => readonly Pipeline[];

/** What every `loomtrace` command is given: where the database is (resolved once, by the caller), and the declared pipelines. */
export interface CliContext {
  readonly databaseUrl: string;
  readonly pipelines: PipelineFactory;
}

export type CliCommand = {
  readonly summary: string;
  /** The command can run without a database (e.g. on a file); its context's databaseUrl is then ''. */
  readonly databaseOptional?: boolean;
  readonly load: () => Promise<{ run(args: string[], ctx: CliContext): Promise<number> }>;
};
