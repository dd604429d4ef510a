/**
 * The outbox's OpenTelemetry metrics. Instruments come from `metrics.getMeter('loomtrace')` of
 * @opentelemetry/api: without an SDK they are no-ops that cost a function call. A process
 * that wants them registers a MeterProvider BEFORE it creates a worker (the api has no proxy
 * meter: a meter taken earlier stays a no-op).
 *
 * Label values are bounded: projection names, outcome and reason enums, sink systems. Never
 * ids, never user content.
 */
import { metrics, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import type { Queryable } from './pool.js';
import { INSTRUMENTATION_SCOPE } from './tracing/semconv.js';
import type { Settled } from './attemptTrace.js';
import type { FailureReason, ItemOutcome } from './outcome.js';
import { queueStats } from './sql/queueStats.js';
import type { OutboxEvent } from './types.js';

/** Metric names, defined once (Prometheus shows dots as underscores, counters with `_total`). */
export const MetricNames = {
  PROCESSED: 'loomtrace.outbox.processed',
  RETRIED: 'loomtrace.outbox.retried',
  RECLAIMED: 'loomtrace.outbox.reclaimed',
  DEAD_LETTERED: 'loomtrace.outbox.dead_lettered',
  STALE_ACKS: 'loomtrace.outbox.stale_acks',
  WRITE_DURATION: 'loomtrace.outbox.write.duration',
  LAG: 'loomtrace.outbox.lag',
  QUEUE_DEPTH: 'loomtrace.outbox.queue.depth',
  OLDEST_PENDING_AGE: 'loomtrace.outbox.oldest_pending.age',
  PURGED: 'loomtrace.outbox.purged',
} as const;

const REASONS: ReadonlySet<string> = new Set<FailureReason>([
  'http_429', 'http_5xx', 'http_4xx', 'timeout', 'connection', 'lease_lost', 'lease_expired', 'worker_gone', 'bad_payload', 'mapping', 'shutdown', 'unknown',
]);
/** A reason outside the known set (a sink's typo, a cast) becomes `unknown`: labels stay bounded. */
export const boundedReason = (r: string): string => (REASONS.has(r) ? r : 'unknown');

/** Seconds; from a 1 ms write to a minute-long backlog. */
const WRITE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

function meter(): Meter {
  return metrics.getMeter(INSTRUMENTATION_SCOPE);
}

/** The worker-side instruments. One per worker; cheap when no SDK is registered. */
export class OutboxMetrics {
  private readonly processed: Counter;
  private readonly retried: Counter;
  private readonly reclaimedCounter: Counter;
  private readonly dead: Counter;
  private readonly staleAcks: Counter;
  private readonly writeDuration: Histogram;
  private readonly lag: Histogram;

  constructor(
    private readonly projection: string,
    private readonly system: string,
  ) {
    const m = meter();
    this.processed = m.createCounter(MetricNames.PROCESSED, { description: 'Events settled by workers, by outcome (written, stale, retry, dead, lost).' });
    this.retried = m.createCounter(MetricNames.RETRIED, { description: 'Events scheduled for another attempt, by reason.' });
    this.reclaimedCounter = m.createCounter(MetricNames.RECLAIMED, { description: 'Events whose lease expired and were put back in the queue.' });
    this.dead = m.createCounter(MetricNames.DEAD_LETTERED, { description: 'Events dead-lettered, by reason.' });
    this.staleAcks = m.createCounter(MetricNames.STALE_ACKS, { description: 'Settles that changed 0 rows: the lease had been lost.' });
    this.writeDuration = m.createHistogram(MetricNames.WRITE_DURATION, {
      description: 'Duration of one bulk write to the projection.',
      unit: 's',
      advice: { explicitBucketBoundaries: WRITE_BUCKETS },
    });
    this.lag = m.createHistogram(MetricNames.LAG, {
      description: 'Commit to visible: from the commit of a change to the ack of its first attempt.',
      unit: 's',
      advice: { explicitBucketBoundaries: LAG_BUCKETS },
    });
  }

  /** Records one settled batch: counts by outcome and reason, the write duration, the lag of first attempts. */
  recordBatch(events: readonly OutboxEvent[], outcomes: readonly ItemOutcome[], settled: readonly Settled[], writeMs: number, ackEndMs: number): void {
    const projection = this.projection;
    this.writeDuration.record(Math.max(0, writeMs) / 1000, { projection, sink: this.system });
    // Counted per outcome and added once per batch (not once per event: the SDK hashes the
    // attributes of every call).
    let written = 0;
    let lost = 0;
    let others: Map<string, number> | undefined;
    const lagAttributes = { projection };
    for (let i = 0; i < events.length; i++) {
      const o = outcomes[i];
      const s = settled[i];
      if (!o || !s) continue;
      const outcome = s.outcome === 'done' ? (o.kind === 'stale' ? 'stale' : 'written') : s.outcome;
      if (outcome === 'written') written++;
      else (others ??= new Map()).set(outcome, (others.get(outcome) ?? 0) + 1);
      if (s.outcome === 'lost') lost++;
      else if (s.outcome === 'retry' && (o.kind === 'retry' || o.kind === 'fail')) this.retried.add(1, { projection, reason: boundedReason(o.reason) });
      else if (s.outcome === 'dead' && (o.kind === 'retry' || o.kind === 'fail')) this.dead.add(1, { projection, reason: boundedReason(o.reason) });
      else if (s.outcome === 'done' && events[i]!.attempt === 1) this.lag.record(Math.max(0, ackEndMs - events[i]!.readyAtMs) / 1000, lagAttributes);
    }
    if (written > 0) this.processed.add(written, { projection, outcome: 'written' });
    if (others) for (const [outcome, n] of others) this.processed.add(n, { projection, outcome });
    if (lost > 0) this.staleAcks.add(lost, { projection });
  }

  /** A reclaim sweep: `n` events put back in the queue, `deadLettered` out of attempts (reason lease_expired). */
  reclaimed(n: number, deadLettered = 0): void {
    if (n > 0) this.reclaimedCounter.add(n, { projection: this.projection });
    if (deadLettered > 0) this.dead.add(deadLettered, { projection: this.projection, reason: 'lease_expired' });
  }
}

/**
 * Queue depth (pending, claimed) and oldest pending age by projection, as observable gauges
 * read with ONE query per collection. A projection that empties keeps reporting 0 (rather
 * than vanishing) so alerts on it resolve. Returns a function that unregisters them.
 */
export function registerQueueGauges(db: Queryable, opts: { projections?: readonly string[]; onError?: (err: unknown) => void } = {}): () => void {
  const m = meter();
  const depth = m.createObservableGauge(MetricNames.QUEUE_DEPTH, { description: 'Events waiting (pending) or in flight (claimed), by projection.' });
  const oldest = m.createObservableGauge(MetricNames.OLDEST_PENDING_AGE, {
    description: 'Age of the oldest pending event, by projection: alert when it grows.',
    unit: 's',
  });
  const known = new Set<string>(opts.projections ?? []);
  const callback = async (result: { observe(o: typeof depth | typeof oldest, v: number, a: Record<string, string>): void }) => {
    let rows;
    try {
      rows = await queueStats(db);
    } catch (err) {
      opts.onError?.(err);
      return;
    }
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.projection);
      known.add(r.projection);
      result.observe(depth, r.pending, { projection: r.projection, state: 'pending' });
      result.observe(depth, r.claimed, { projection: r.projection, state: 'claimed' });
      result.observe(oldest, r.oldest_pending_ms / 1000, { projection: r.projection });
    }
    for (const p of known) {
      if (seen.has(p)) continue;
      result.observe(depth, 0, { projection: p, state: 'pending' });
      result.observe(depth, 0, { projection: p, state: 'claimed' });
      result.observe(oldest, 0, { projection: p });
    }
  };
  m.addBatchObservableCallback(callback, [depth, oldest]);
  return () => m.removeBatchObservableCallback(callback, [depth, oldest]);
}
