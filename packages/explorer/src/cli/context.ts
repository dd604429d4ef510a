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
  readonly load: () => Promise<{ run(args: string[], ctx: CliContext): Promise<number> }>;
};
