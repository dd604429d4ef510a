import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

/**
 * JSON lines with the active trace_id and span_id, so a log line leads to its trace.
 * Never log user content (block text): log ids and sizes.
 */
export function createLogger(service: string, level = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Requests are logged by path only: a query string can carry user text (search terms).
    serializers: {
      req: (req: { method?: string; url?: string; id?: string }) => ({ method: req.method, path: req.url?.split('?')[0] }),
    },
    mixin() {
      const sc = trace.getActiveSpan()?.spanContext();
      return sc && sc.traceId !== '00000000000000000000000000000000' ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
    },
  });
}
