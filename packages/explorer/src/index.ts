/**
 * @loomtrace/explorer: the OTLP/HTTP receiver, span store, query API and UI, listed by name.
 */
export { startExplorer } from './explorer.js';
export type { RunningExplorer, ExplorerDeclarations } from './explorer.js';
export { compileExplorerOptions, explorerOptionsFromEnv, isLoopback } from './options.js';
export type { ExplorerOptions, ExplorerOptionsInput, Limits } from './options.js';
export { migrateExplorer, EXPLORER_MIGRATIONS } from './migrate.js';
export { diagnose, holdsVersion } from './query/diagnosis.js';
export type { Diagnosis, VerdictKind, Step } from './query/diagnosis.js';
export { findPipeline, describePipelines } from './query/pipelines.js';
export { listEvents, replayEvent } from './query/replay.js';
export { selectTraceJson } from './query/sql/traceSpans.js';
export { pruneByAge, pruneBySize, pruneResources } from './store/sql/pruneSpans.js';
export { ExportTraceServiceRequest, ExportTraceServiceResponse } from './otlp/proto.js';
export { runCli, COMMANDS } from './cli/main.js';
export type { CliOptions } from './cli/main.js';
export type { CliCommand, CliContext } from './cli/context.js';
export { assertTraceShape, checkTraceShape, formatShapeReport, normalizeSpans, spansFromOtlpJson, tracesWith } from './check/shape.js';
export type { CheckSpan, ShapeProblem, ShapeProblemKind, ShapeReport } from './check/shape.js';
export { runProbe } from './probe/probe.js';
export type { ProbeOptions, ProbeOutcome, ProbeResult } from './probe/probe.js';
export { ProbeMetrics } from './probe/metrics.js';
