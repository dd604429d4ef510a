import type { Pool, PoolClient } from '@loomtrace/outbox';
import type { ResourceRow, SpanRow } from '../otlp/normalize.js';
import { insertSpans } from './sql/insertSpans.js';

interface Entry {
  rows: readonly SpanRow[];
  resources: readonly ResourceRow[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface WriteQueueStats {
  queuedSpans: number;
  writtenSpans: number;
  failedBatches: number;
  refused: number;
}

/**
 * The receiver's write path: requests hand their spans here and wait for the INSERT that
 * carries them. Spans of concurrent requests are merged into batches of about
 * `batchSpans`, with at most `concurrency` statements in flight. Bounded: `offer` refuses
 * (returns undefined) when the spans waiting would pass `capacity`, and the receiver says
 * 429; the memory held is never more than `capacity` spans plus the batches in flight.
 */
export class SpanWriteQueue {
  private readonly waiting: Entry[] = [];
  private queued = 0;
  private inFlight = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly configured = new WeakSet<PoolClient>();
  readonly stats: WriteQueueStats = { queuedSpans: 0, writtenSpans: 0, failedBatches: 0, refused: 0 };

  constructor(
    private readonly pool: Pool,
    private readonly opts: { capacity: number; batchSpans: number; concurrency: number; onError?: (err: Error) => void },
  ) {}

  /** Resolves when the spans are committed; undefined when the queue is full (try later). */
  offer(rows: readonly SpanRow[], resources: readonly ResourceRow[] = []): Promise<void> | undefined {
    if (this.closed) return Promise.reject(new Error('explorer is shutting down'));
    if (rows.length === 0) return Promise.resolve();
    if (this.queued + rows.length > this.opts.capacity) {
      this.stats.refused++;
      return undefined;
    }
    const p = new Promise<void>((resolve, reject) => this.waiting.push({ rows, resources, resolve, reject }));
    this.queued += rows.length;
    this.stats.queuedSpans = this.queued;
    this.pump();
    return p;
  }

  private pump(): void {
    while (this.inFlight < this.opts.concurrency && this.waiting.length > 0) {
      const batch: Entry[] = [];
      let n = 0;
      while (this.waiting.length > 0 && (n === 0 || n + this.waiting[0]!.rows.length <= this.opts.batchSpans)) {
        const e = this.waiting.shift()!;
        batch.push(e);
        n += e.rows.length;
      }
      this.inFlight++;
      void this.write(batch, n);
    }
  }

  private async write(batch: Entry[], n: number): Promise<void> {
    try {
      // One request may exceed a batch: cut it into statements of batchSpans.
      const rows = batch.length === 1 ? batch[0]!.rows : batch.flatMap((e) => e.rows);
      const resources = batch.length === 1 ? batch[0]!.resources : [...new Map(batch.flatMap((e) => e.resources).map((r) => [r.id, r])).values()];
      const client = await this.pool.connect();
      // Released with the error when a statement fails: a connection that died mid-batch (or
      // a session left in an unknown state) is discarded by the pool, never handed out again.
      let failed: Error | undefined;
      try {
        if (!this.configured.has(client)) {
          // Spans are diagnostics: a crash may lose the last moments of them, never corrupt
          // them, and commits need not wait for the WAL flush. Only this session changes.
          await client.query('set synchronous_commit = off');
          this.configured.add(client);
        }
        for (let i = 0; i < rows.length; i += this.opts.batchSpans) {
          await insertSpans(client, rows.slice(i, i + this.opts.batchSpans), resources);
        }
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        client.release(failed);
      }
      this.stats.writtenSpans += n;
      for (const e of batch) e.resolve();
    } catch (err) {
      this.stats.failedBatches++;
      const e = err instanceof Error ? err : new Error(String(err));
      try {
        this.opts.onError?.(e);
      } catch {
        /* a listener must not break the queue */
      }
      for (const x of batch) x.reject(e);
    } finally {
      this.queued -= n;
      this.stats.queuedSpans = this.queued;
      this.inFlight--;
      this.pump();
      if (this.inFlight === 0 && this.waiting.length === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
    }
  }

  /** Stops taking spans and waits for the ones already queued. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.inFlight === 0 && this.waiting.length === 0) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }
}
