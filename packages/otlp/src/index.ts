/**
 * @loomtrace/otlp: a fast OTLP/HTTP span encoder, exporter and span processor, listed by name.
 */
export { BACKLOG_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, EventSpanExporter, eventSpanExporterOptionsFromEnv, tracesUrlFromEnv } from './exporter.js';
export type { EventSpanExporterOptions, OtlpHttpProtocol, ResourceLike, ScopeLike, SpanOrigin } from './exporter.js';
export { OtlpSpanProcessor } from './sdkSpans.js';
export type { ProcessedSpan } from './sdkSpans.js';
export type { AttrKey, AttrValue, AttrSet, EventIds, Fragment, SpanWriter } from './common.js';
export { chunkStats as spanBufferStats } from './protoBuffer.js';
