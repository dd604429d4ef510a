/**
 * Internals that loomtrace's own tests and benchmarks reach (`@loomtrace/explorer/internal`),
 * listed by name, with no compatibility promise.
 */
export { HttpError } from './otlp/body.js';
export { checkJsonSize, checkProtobufRequest } from './otlp/bounds.js';
export { checkJsonRequest } from './otlp/jsonShape.js';
export { normalizeRequest } from './otlp/normalize.js';
export { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus, SpanType } from './otlp/proto.js';
