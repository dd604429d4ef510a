/**
 * Outbox upkeep: deletes done events after a retention period, in batches, so the table and
 * the claim's indexes stay the size of the live backlog rather than of history. Each batch is
 * its own short transaction (autocommit); between batches the loop yields, so the upkeep
 * never holds many locks or competes with the claim for long.
 */
import { metrics } from '@opentelemetry/api';
import type { Pool } from './pool.js';
import { INSTRUMENTATION_SCOPE } from './tracing/semconv.js';
import { shortMessage } from './tracing/spans.js';
import { MetricNames } from './metrics.js';
import { intOption, type Logger } from './options.js';
import { purgeDone } from './sql/purgeDone.js';

export interface UpkeepOptions {
  pool: Pool;
  /** Done events younger than this are kept (for diagnosis). Default 24 h. */
  retentionMs?: number;
  /** How often a sweep starts. Default 60 s. */
  intervalMs?: number;
  /** Events deleted per statement. Default 5,000. */
  batchSize?: number;
  /** A sweep stops after this many batches, to come back next interval. Default 200. */
  maxBatchesPerSweep?: number;
  /**
   * After this many deletions since the last one, the sweep runs `VACUUM (SKIP_LOCKED)` on the
   * outbox, its queue table and its lease rows so the freed space is reused at once instead of at the next autovacuum round
   * (autovacuum_naptime, a minute by default). 0 turns it off. Default 50,000.
   */
  vacuumAfterRows?: number;
  logger?: Logger;
}

export interface CompiledUpkeepOptions {
  readonly pool: Pool;
  readonly retentionMs: number;
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly maxBatchesPerSweep: number;
  readonly vacuumAfterRows: number;
  readonly logger: Logger | undefined;
}

const int = (name: string, v: number | undefined, fallback: number, min: number, max: number) => intOption('upkeep', name, v, fallback, min, max);

export function compileUpkeepOptions(o: UpkeepOptions): CompiledUpkeepOptions {
  if (!o.pool) throw new TypeError('upkeep option pool is required');
  return Object.freeze({
    pool: o.pool,
    retentionMs: int('retentionMs', o.retentionMs, 86_400_000, 0, 365 * 86_400_000),
    intervalMs: int('intervalMs', o.intervalMs, 60_000, 10, 86_400_000),
    batchSize: int('batchSize', o.batchSize, 5_000, 1, 1_000_000),
    maxBatchesPerSweep: int('maxBatchesPerSweep', o.maxBatchesPerSweep, 200, 1, 1_000_000),
    vacuumAfterRows: int('vacuumAfterRows', o.vacuumAfterRows, 50_000, 0, 1_000_000_000),
    logger: o.logger,
  });
}

export class OutboxUpkeep {
  readonly options: CompiledUpkeepOptions;
  /** Events deleted since start. */
  purged = 0;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private stopped = true;
  /** Set by stop(): a sweep in progress ends after its current batch. */
  private stopRequested = false;
  private sinceVacuum = 0;
  /** VACUUMs run by this upkeep. */
  vacuums = 0;
  private readonly counter = metrics.getMeter(INSTRUMENTATION_SCOPE).createCounter(MetricNames.PURGED, { description: 'Done events deleted by the upkeep after their retention.' });

  constructor(options: UpkeepOptions) {
    this.options = compileUpkeepOptions(options);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopRequested = false;
    this.schedule(Math.min(this.options.intervalMs, 1_000));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopRequested = true;
    clearTimeout(this.timer);
    await this.sweeping?.catch(() => 0);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.sweeping = this.sweep().finally(() => {
        this.sweeping = undefined;
        if (!this.stopped) this.schedule(this.options.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** One sweep: batches until a short one (or the per-sweep cap); returns events deleted. Never throws. */
  async sweep(): Promise<number> {
    const o = this.options;
    let total = 0;
    try {
      for (let i = 0; i < o.maxBatchesPerSweep; i++) {
        const n = await purgeDone(o.pool, o.retentionMs, o.batchSize);
        total += n;
        this.purged += n;
        if (n > 0) this.counter.add(n);
        if (n < o.batchSize || this.stopRequested) break;
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (err) {
      o.logger?.warn({ err: shortMessage(err), purged: total }, 'outbox upkeep failed; will try again');
    }
    this.sinceVacuum += total;
    if (o.vacuumAfterRows > 0 && this.sinceVacuum >= o.vacuumAfterRows) {
      this.sinceVacuum = 0;
      try {
        // Not in a transaction (pool.query autocommits); SKIP_LOCKED: another worker's vacuum is enough.
        // The queue table and the lease rows churn at the same rate (every event is inserted into
        // and deleted from the queue): their dead index entries would slow the claim down.
        await o.pool.query('vacuum (skip_locked) loomtrace.outbox, loomtrace.outbox_queue, loomtrace.outbox_leases');
        this.vacuums++;
      } catch (err) {
        o.logger?.warn({ err: shortMessage(err) }, 'outbox vacuum failed; autovacuum will do it');
      }
    }
    if (total > 0) o.logger?.info({ purged: total, retention_ms: o.retentionMs }, 'outbox upkeep deleted done events');
    return total;
  }
}
