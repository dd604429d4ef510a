/**
 * Exports spans encoded by a SpanWriter (the worker's per-event spans, the SDK's own spans via
 * sdkSpans.ts) to the OTLP/HTTP endpoint the SDK's own exporter would use, batched the way the
 * SDK's BatchSpanProcessor batches (schedule delay, max export batch size, bounded queue that
 * drops and counts when full), one export in flight, up to MAX_CONCURRENT_EXPORTS full batches
 * when they pile up (docs/decisions/0014-worker-tracing-cost.md), each request taking up to
 * `backlogExportBatchSize` spans of a backlog (decision 0016). It honours what the stock exporter
 * honours: config.ts (variables, TLS), transport.ts (one POST), retry.ts (the retry policy),
 * response.ts (partial success). Its own requests are never traced.
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { ROOT_CONTEXT, context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { SpanWriter } from './common.js';
import { diagLogger, type EventSpanExporterOptions, type Logger, type OtlpHttpProtocol } from './config.js';
import { Envelopes, mergeByOrigin, type Group, type SpanOrigin } from './envelope.js';
import { JsonSpanWriter } from './json.js';
import { ProtoSpanWriter } from './protoSdkSpan.js';
import { logResponse } from './response.js';
import { STOCK_RETRY_POLICY, sendWithRetries, type RetryPolicy } from './retry.js';
import { HttpTransport } from './transport.js';

export type { ResourceLike, ScopeLike, SpanOrigin } from './envelope.js';
export type { EventSpanExporterOptions, OtlpHttpProtocol, TlsMaterial } from './config.js';
export { BACKLOG_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, eventSpanExporterOptionsFromEnv, tracesUrlFromEnv, USER_AGENT } from './config.js';

const gzipAsync = promisify(gzip);

/** The context every export runs in: no active span (nothing to parent to), tracing suppressed. */
const EXPORT_CONTEXT = suppressTracing(ROOT_CONTEXT);

/**
 * Exports in flight at most. One, as the BatchSpanProcessor, while the queue holds less than a
 * full export batch; with a backlog (the receiver answers more slowly than spans are made) up to
 * this many full batches go out at once, so the throughput is not one round trip per batch and
 * the queue does not fill up and drop spans (each request still carries at most
 * OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans).
 */
export const MAX_CONCURRENT_EXPORTS = 4;

export class EventSpanExporter {
  readonly writer: SpanWriter;
  /** Spans dropped because the queue was full, since the start. */
  dropped = 0;
  /** Spans dropped because the receiver refused them or could not be reached. */
  failed = 0;
  /** Spans the receiver accepted (a partial success counts its rejected spans here too). */
  exported = 0;
  /** Spans a receiver's partial success said it rejected. */
  rejected = 0;
  private readonly opts: EventSpanExporterOptions;
  private readonly log: Logger;
  private readonly retry: RetryPolicy;
  private readonly transport: HttpTransport;
  private readonly maxExportBatchSize: number;
  /** What one export takes at most: maxExportBatchSize, or more with a backlog when the user did not set it. */
  private readonly takeMax: number;
  private queue: Group[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Exports in flight. */
  private readonly exporting = new Set<Promise<void>>();
  private droppedSinceWarn = 0;
  private closed = false;
  private readonly envelopes = new Envelopes();

  constructor(options: EventSpanExporterOptions) {
    this.opts = options;
    this.log = options.logger ?? diagLogger;
    this.maxExportBatchSize = Math.min(options.maxExportBatchSize, options.maxQueueSize);
    this.takeMax = Math.min(Math.max(this.maxExportBatchSize, options.backlogExportBatchSize ?? 0), options.maxQueueSize);
    const s = STOCK_RETRY_POLICY;
    this.retry = {
      maxRetries: options.maxRetries ?? s.maxRetries,
      initialBackoffMs: options.initialBackoffMs ?? s.initialBackoffMs,
      backoffMultiplier: options.backoffMultiplier ?? s.backoffMultiplier,
      maxBackoffMs: options.maxBackoffMs ?? s.maxBackoffMs,
      jitter: s.jitter,
    };
    this.transport = new HttpTransport(options);
    this.writer = options.protocol === 'http/json' ? new JsonSpanWriter() : new ProtoSpanWriter();
  }

  get protocol(): OtlpHttpProtocol {
    return this.opts.protocol;
  }

  /**
   * Queues the spans the writer (this exporter's own, or another of the same protocol)
   * finished since the last call; they carry this origin's resource and scope.
   */
  submit(origin: SpanOrigin, writer: SpanWriter = this.writer): void {
    for (let part of writer.take()) {
      if (this.closed) {
        this.dropped += part.count;
        part.done();
        continue;
      }
      const room = this.opts.maxQueueSize - this.queued;
      if (part.count > room) {
        const lost = part.count - Math.max(0, room);
        this.dropped += lost;
        if (this.droppedSinceWarn === 0) this.log.debug?.({ max_queue_size: this.opts.maxQueueSize }, 'OTLP exporter: queue full, dropping spans');
        this.droppedSinceWarn += lost;
        if (room <= 0) {
          part.done();
          continue;
        }
        const [kept, lostPart] = part.split(room);
        lostPart.done();
        part = kept;
      } else if (this.droppedSinceWarn > 0) {
        this.log.warn({ dropped_spans: this.droppedSinceWarn, max_queue_size: this.opts.maxQueueSize }, 'OTLP exporter: spans dropped because the queue was full');
        this.droppedSinceWarn = 0;
      }
      const last = this.queue[this.queue.length - 1];
      if (last && last.origin === origin) {
        last.parts.push(part);
        last.count += part.count;
      } else {
        this.queue.push({ origin, parts: [part], count: part.count });
      }
      this.queued += part.count;
    }
    // Not at once: the caller (a worker finishing a batch) goes on to its next statement first,
    // and the request is built and written while that one is in flight.
    if (!this.soon) {
      this.soon = true;
      setImmediate(this.scheduleSoon);
    }
  }

  private soon = false;
  private readonly scheduleSoon = (): void => {
    this.soon = false;
    this.schedule();
  };

  private schedule(): void {
    // Full batches go at once, several in flight when they pile up.
    while (this.queued >= this.maxExportBatchSize && this.exporting.size < MAX_CONCURRENT_EXPORTS) {
      this.clearTimer();
      this.startExport();
    }
    // A partial batch waits for the schedule delay, and for the exports in flight.
    if (this.exporting.size > 0 || this.timer !== undefined || this.queued === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.exporting.size === 0) this.startExport();
    }, this.opts.scheduledDelayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private startExport(): void {
    if (this.queued === 0) return;
    // Our own requests must never become spans (an http instrumentation would trace them, as
    // children of whichever span was active when the spans were queued): as the
    // BatchSpanProcessor does, the export runs with tracing suppressed, and from the root.
    const p: Promise<void> = context
      .with(EXPORT_CONTEXT, () => this.exportOne())
      .catch((err: unknown) => this.log.error({ reason: err instanceof Error ? err.name : typeof err }, 'OTLP export failed unexpectedly'))
      .finally(() => {
        this.exporting.delete(p);
        this.schedule();
      });
    this.exporting.add(p);
  }

  /** Takes up to one export batch off the queue, grouped by origin. */
  private takeBatch(): { groups: Group[]; count: number } {
    const groups: Group[] = [];
    let count = 0;
    const max = this.takeMax;
    while (this.queue.length > 0 && count < max) {
      const g = this.queue[0]!;
      const taken: Group = { origin: g.origin, parts: [], count: 0 };
      // Parts taken whole are removed once, at the end (a group can hold one part per span).
      let i = 0;
      while (i < g.parts.length && count < max) {
        const part = g.parts[i]!;
        const room = max - count;
        if (part.count <= room) {
          taken.parts.push(part);
          taken.count += part.count;
          count += part.count;
          i++;
        } else {
          const [head, rest] = part.split(room);
          taken.parts.push(head);
          taken.count += head.count;
          count += head.count;
          g.parts[i] = rest;
        }
      }
      if (i > 0) g.parts.splice(0, i);
      g.count -= taken.count;
      if (g.parts.length === 0) this.queue.shift();
      groups.push(taken);
    }
    this.queued -= count;
    return { groups: mergeByOrigin(groups), count };
  }

  private async exportOne(): Promise<void> {
    const { groups, count } = this.takeBatch();
    if (count === 0) return;
    for (const g of groups) {
      const r = g.origin.resource;
      if (r.asyncAttributesPending && r.waitForAsyncAttributes) await r.waitForAsyncAttributes();
    }
    // Protobuf: the envelope's few bytes and the spans' chunks as they are (no copy into one body).
    let body: Buffer[] = this.opts.protocol === 'http/json' ? [this.envelopes.encodeJson(groups)] : this.envelopes.encodeProtoParts(groups);
    if (this.opts.compression === 'gzip') body = [await gzipAsync(Buffer.concat(body))];
    // The spans' buffers are reused once done (SpanChunk), so only when no try may still be
    // writing them: a try answered before its body was handed to the OS leaves them to the GC.
    let written = true;
    const r = await sendWithRetries(
      async (t) => {
        const res = await this.transport.send(body, t);
        if (res.unwritten) written = false;
        return res;
      },
      this.opts.timeoutMs,
      this.retry,
    );
    if (written) for (const g of groups) for (const part of g.parts) part.done();
    if (r.status === 'success') {
      this.exported += count;
      this.rejected += logResponse(this.log, this.opts.protocol, r.data, count);
      return;
    }
    this.failed += count;
    this.log.warn({ spans: count, tries: r.tries, reason: r.why, retryable: r.status === 'retryable' }, 'OTLP export failed; spans dropped');
  }

  /** Exports everything queued, and waits for the exports in flight. */
  async forceFlush(): Promise<void> {
    this.clearTimer();
    for (;;) {
      // Full batches side by side; a partial one once nothing is in flight, as schedule().
      while (this.queued > 0 && this.exporting.size < MAX_CONCURRENT_EXPORTS && (this.queued >= this.maxExportBatchSize || this.exporting.size === 0)) this.startExport();
      if (this.exporting.size === 0) return;
      await Promise.race(this.exporting);
    }
  }

  /** Flushes, then refuses further spans and closes idle connections. */
  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
    this.clearTimer();
    this.transport.shutdown();
  }
}
