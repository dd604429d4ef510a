import type { Pipeline, Pool } from '@loomtrace/outbox';
import type { CliContext } from './context.js';
import { findPipeline, PipelineLookupError } from '../query/pipelines.js';

/** The declared pipeline a command names, or undefined once it said why not (the command then exits 2). */
export function namedPipeline(ctx: CliContext, pool: Pool, type: string, projection: string | undefined): Pipeline | undefined {
  try {
    return findPipeline(ctx.pipelines(pool), type, projection);
  } catch (err) {
    if (!(err instanceof PipelineLookupError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return undefined;
  }
}
