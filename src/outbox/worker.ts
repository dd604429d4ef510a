import { randomUUID } from 'node:crypto';
import { context } from '@opentelemetry/api';
import type { PoolClient } from '../db/pool.js';
import { shortMessage } from '../tracing/spans.js';
import { BatchTrace, nowMs, type Settled } from './attemptTrace.js';
import { backoffDelay } from './backoff.js';
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './options.js';
import { classifyError, type ItemOutcome } from './outcome.js';
import { claimEvents, type ClaimRow } from './sql/claimEvents.js';
import { completeEvents } from './sql/completeEvents.js';
import { failEvents, type FailItem } from './sql/failEvents.js';
import { reclaimExpired } from './sql/reclaimExpired.js';
import { releaseEvents } from './sql/releaseEvents.js';
import { renewLease } from './sql/renewLease.js';
import type { OutboxEvent } from './types.js';

export interface WorkerStats {
  claimed: number;
  done: number;
  retried: number;
  dead: number;
  staleAcks: number;
  reclaimed: number;
  batches: number;
}

/** One claimed batch while it is in our hands. */
interface Held {
  readonly ids: string[];
  readonly token: string;
  readonly abort: AbortController;
  lost: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

function toEvent(r: ClaimRow, projection: string): OutboxEvent {
  return {
    id: r.id,
    projection,
    eventType: r.event_type,
    aggregateType: r.aggregate_type,
    aggregateId: r.aggregate_id,
    aggregateVersion: Number(r.aggregate_version),
    libraryId: r.library_id,
    requestId: r.request_id,
    traceparent: r.traceparent,
    tracestate: r.tracestate,
    payload: r.payload,
    attempt: r.attempts,
    previousOwner: r.previous_owner,
    previousToken: r.previous_token,
    reclaimed: r.last_reason === 'lease_expired',
    previousLeaseMs: r.previous_lease_ms,
    lastReason: r.last_reason,
    lastDelayMs: r.last_delay_ms,
    lastAttemptSpan: r.last_attempt_span,
    readyAtMs: r.ready_at_ms,
    readySource: r.ready_source,
    claimedAtMs: r.claimed_at_ms,
  };
}

/**
 * Claims events of one projection under a lease, writes them to the sink, and settles each
 * with a guarded UPDATE. Wakes on LISTEN/NOTIFY, polls as a fallback, renews its leases,
 * reclaims expired ones, and on stop hands unfinished work back.
 */
export class OutboxWorker {
  readonly options: CompiledWorkerOptions;
  readonly stats: WorkerStats = { claimed: 0, done: 0, retried: 0, dead: 0, staleAcks: 0, reclaimed: 0, batches: 0 };
  private running = false;
  private stopping = false;
  private commitTimestamps = false;
  private kicked = false;
  private waiters = new Set<() => void>();
  private lanes: Promise<void>[] = [];
  private held = new Set<Held>();
  private listener: PoolClient | undefined;
  private reclaimTimer: NodeJS.Timeout | undefined;

  constructor(options: WorkerOptions) {
    this.options = compileWorkerOptions(options);
  }

  get workerId(): string {
    return this.options.workerId;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('worker already started');
    this.running = true;
    const { pool } = this.options;
    const { rows } = await pool.query<{ on: boolean }>("select current_setting('track_commit_timestamp') = 'on' as on");
    this.commitTimestamps = rows[0]?.on === true;
    if (this.options.listen) await this.listen();
    this.scheduleReclaim();
    for (let i = 0; i < this.options.concurrency; i++) this.lanes.push(this.lane());
    this.options.logger.info(
      { worker_id: this.workerId, projection: this.options.projection, batch_size: this.options.batchSize, concurrency: this.options.concurrency, commit_timestamps: this.commitTimestamps },
      'outbox worker started',
    );
  }

  /** Wakes idle lanes (a notification, a test, a producer in the same process). */
  kick(): void {
    this.kicked = true;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /**
   * Stops claiming, lets in-flight batches finish within the grace period, then hands back
   * whatever is still held so another worker takes it over at once.
   */
  async stop(): Promise<void> {
    if (!this.running || this.stopping) return;
    this.stopping = true;
    clearTimeout(this.reclaimTimer);
    this.kick();
    const finished = Promise.all(this.lanes).then(() => true);
    const inTime = await Promise.race([finished, sleep(this.options.shutdownGraceMs).then(() => false)]);
    if (!inTime) {
      for (const h of this.held) {
        h.lost = true;
        h.abort.abort(new Error('worker shutting down'));
        try {
          const n = await releaseEvents(this.options.pool, h.ids, h.token, this.workerId);
          this.options.logger.warn({ worker_id: this.workerId, released: n }, 'released unfinished events on shutdown');
        } catch (err) {
          this.options.logger.error({ err: shortMessage(err) }, 'could not release events; they return after lease expiry');
        }
      }
      await Promise.race([finished, sleep(1_000)]);
    }
    if (this.listener) {
      const l = this.listener;
      this.listener = undefined;
      try {
        await l.query('unlisten *');
      } catch {
        /* connection may be gone */
      }
      l.release();
    }
    this.running = false;
    this.options.logger.info({ worker_id: this.workerId, ...this.stats }, 'outbox worker stopped');
  }

  private async listen(): Promise<void> {
    try {
      const client = await this.options.pool.connect();
      client.on('notification', () => this.kick());
      client.on('error', () => {
        // Lost the LISTEN connection: fall back to polling, reconnect shortly.
        if (this.listener === client) this.listener = undefined;
        client.release(true);
        if (!this.stopping) void sleep(500).then(() => (this.stopping ? undefined : this.listen()));
      });
      await client.query('listen loomtrace_outbox');
      this.listener = client;
      this.kick(); // anything committed before we listened
    } catch (err) {
      this.options.logger.warn({ err: shortMessage(err) }, 'LISTEN failed; polling until it works');
      if (!this.stopping) void sleep(1_000).then(() => (this.stopping ? undefined : this.listen()));
    }
  }

  private scheduleReclaim(): void {
    const jitter = 0.8 + this.options.random() * 0.4;
    this.reclaimTimer = setTimeout(() => void this.reclaim(), Math.round(this.options.reclaimIntervalMs * jitter));
    this.reclaimTimer.unref();
  }

  private async reclaim(): Promise<void> {
    try {
      const n = await reclaimExpired(this.options.pool, this.options.projection, 1_000);
      if (n > 0) {
        this.stats.reclaimed += n;
        this.options.logger.warn({ worker_id: this.workerId, reclaimed: n, projection: this.options.projection }, 'reclaimed events with expired leases');
        this.kick();
      }
    } catch (err) {
      this.options.logger.warn({ err: shortMessage(err) }, 'reclaim sweep failed; will try again');
    }
    if (!this.stopping) this.scheduleReclaim();
  }

  private waitForWork(): Promise<void> {
    if (this.kicked || this.stopping) {
      this.kicked = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.options.pollIntervalMs);
      timer.unref();
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    }).then(() => {
      this.kicked = false;
    });
  }

  private async lane(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const n = await context.with(context.active(), () => this.runBatch());
        failures = 0;
        if (n < this.options.batchSize) await this.waitForWork();
      } catch (err) {
        failures++;
        const delay = Math.min(5_000, 50 * 2 ** Math.min(failures, 7));
        this.options.logger.warn({ err: shortMessage(err), worker_id: this.workerId, retry_in_ms: delay }, 'claim loop error; backing off');
        await sleep(delay);
      }
    }
  }

  /** Runs one claim → write → settle cycle; returns how many events it claimed. */
  private async runBatch(): Promise<number> {
    const o = this.options;
    const token = randomUUID();
    const claimStart = nowMs();
    const rows = await claimEvents(o.pool, {
      projection: o.projection,
      limit: o.batchSize,
      leaseToken: token,
      owner: o.workerId,
      leaseMs: o.leaseMs,
      commitTimestamps: this.commitTimestamps,
    });
    const claimEnd = nowMs();
    if (rows.length === 0) return 0;
    this.stats.claimed += rows.length;
    this.stats.batches++;
    const events = rows.map((r) => toEvent(r, o.projection));
    const held: Held = { ids: events.map((e) => e.id), token, abort: new AbortController(), lost: false };
    this.held.add(held);
    const bt = new BatchTrace(o.projection, o.workerId, token, events, claimStart, claimEnd, o.sink.system);
    const heartbeat = setInterval(() => void this.heartbeat(held), o.heartbeatMs);
    heartbeat.unref();
    try {
      return await context.with(bt.batchContext, async () => {
        const writeStart = nowMs();
        const outcomes = await this.write(events, held.abort.signal);
        const writeEnd = nowMs();
        clearInterval(heartbeat);
        const ackStart = nowMs();
        const settled = await this.settle(events, outcomes, held, bt);
        const ackEnd = nowMs();
        bt.finish(outcomes, settled, { writeStart, writeEnd, ackStart, ackEnd });
        return events.length;
      });
    } finally {
      clearInterval(heartbeat);
      this.held.delete(held);
    }
  }

  private async write(events: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly ItemOutcome[]> {
    try {
      const outcomes = await this.options.sink.write(events, signal);
      if (outcomes.length !== events.length) {
        throw new Error(`sink ${this.options.sink.name} answered ${outcomes.length} outcomes for ${events.length} events`);
      }
      return outcomes;
    } catch (err) {
      const o = classifyError(err);
      return events.map(() => o);
    }
  }

  private async heartbeat(held: Held): Promise<void> {
    if (held.lost) return;
    try {
      const kept = await renewLease(this.options.pool, held.ids, held.token, this.options.leaseMs);
      if (kept.size < held.ids.length) {
        held.lost = true;
        held.abort.abort(new Error('lease lost'));
        this.options.logger.warn({ worker_id: this.workerId, lease_token: held.token, lost: held.ids.length - kept.size }, 'lease lost; abandoning the batch');
      }
    } catch (err) {
      this.options.logger.warn({ err: shortMessage(err) }, 'heartbeat failed; will try again');
    }
  }

  /** Acks successes and schedules or dead-letters failures, each guarded by the lease token. */
  private async settle(events: readonly OutboxEvent[], outcomes: readonly ItemOutcome[], held: Held, bt: BatchTrace): Promise<Settled[]> {
    const o = this.options;
    const settled: Settled[] = new Array(events.length);
    const doneIds: string[] = [];
    const fails: FailItem[] = [];
    const failIndex: number[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const out = outcomes[i]!;
      if (out.kind === 'written' || out.kind === 'stale') {
        doneIds.push(e.id);
        continue;
      }
      const dead = out.kind === 'fail' || e.attempt >= o.maxAttempts;
      const delayMs = dead ? 0 : backoffDelay(e.attempt, o.backoff, o.random, out.kind === 'retry' ? out.retryAfterMs : undefined);
      fails.push({ id: e.id, nextState: dead ? 'dead' : 'pending', delayMs, reason: out.reason, error: out.message.slice(0, 200), span: bt.spanRef(i) });
      failIndex.push(i);
    }
    const acked = doneIds.length ? await this.withDbRetry(() => completeEvents(o.pool, doneIds, held.token)) : new Set<string>();
    const failed = fails.length ? await this.withDbRetry(() => failEvents(o.pool, fails, held.token)) : new Set<string>();
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const out = outcomes[i]!;
      if (out.kind === 'written' || out.kind === 'stale') {
        const ok = acked.has(e.id);
        settled[i] = { outcome: ok ? 'done' : 'lost', ackRows: ok ? 1 : 0 };
        if (ok) this.stats.done++;
        else this.stats.staleAcks++;
      }
    }
    fails.forEach((f, k) => {
      const ok = failed.has(f.id);
      settled[failIndex[k]!] = { outcome: ok ? (f.nextState === 'dead' ? 'dead' : 'retry') : 'lost', ackRows: ok ? 1 : 0, delayMs: f.delayMs };
      if (!ok) this.stats.staleAcks++;
      else if (f.nextState === 'dead') this.stats.dead++;
      else this.stats.retried++;
    });
    if (fails.length) o.logger.info({ worker_id: this.workerId, retried: fails.filter((f) => f.nextState === 'pending').length, dead: fails.filter((f) => f.nextState === 'dead').length, reasons: [...new Set(fails.map((f) => f.reason))] }, 'batch had failures');
    return settled;
  }

  /** Settling must survive a dropped connection: try again on a fresh one, a few times. */
  private async withDbRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const c = classifyError(err);
        if (c.kind !== 'retry' || attempt >= 6 || (c.reason !== 'connection' && c.reason !== 'timeout')) throw err;
        await sleep(50 * 2 ** attempt);
      }
    }
  }
}
