import { randomUUID } from 'node:crypto';
import { context } from '@opentelemetry/api';
import { shortMessage } from './tracing/spans.js';
import { BatchTrace, nowMs, type Settled } from './attemptTrace.js';
import { backoffDelay } from './backoff.js';
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './options.js';
import { OutboxListener } from './listener.js';
import { WorkerPresence } from './presence.js';
import { OutboxMetrics } from './metrics.js';
import { classifyError, ProjectionError, type ItemOutcome } from './outcome.js';
import { claimEvents, type ClaimRow } from './sql/claimEvents.js';
import { toEvent } from './claimedEvent.js';
import { completeBatch } from './sql/completeBatch.js';
import { completeEvents } from './sql/completeEvents.js';
import { failEvents, type FailItem } from './sql/failEvents.js';
import { reclaimExpired } from './sql/reclaimExpired.js';
import { releaseEvents } from './sql/releaseEvents.js';
import { renewLease } from './sql/renewLease.js';
import { selectSettled } from './sql/selectSettled.js';
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
  /**
   * Each event's process span (traceparent), recorded by the heartbeat so a reclaim can link
   * to it. Built at the first heartbeat (most batches finish before one): undefined until
   * then, null when no event is traced.
   */
  spans: (string | null)[] | null | undefined;
  /** Set when the heartbeat found the lease gone, or on shutdown after the events were handed back. */
  lost: boolean;
  /** A heartbeat statement is in flight (a slow database must not pile them up). */
  beating: boolean;
  /** The batch's spans, told of each renewal. */
  trace: BatchTrace | undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

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
  private listener: OutboxListener | undefined;
  private presence: WorkerPresence | undefined;
  private reclaimTimer: NodeJS.Timeout | undefined;
  /**
   * Holds the process open while the worker runs. Every other timer is unref'd, and a database
   * outage closes every socket: without this, a worker waiting to retry would see Node exit
   * under it, silently, with code 0.
   */
  private keepAlive: NodeJS.Timeout | undefined;
  /** OpenTelemetry instruments (no-ops without a registered MeterProvider). */
  private readonly metrics: OutboxMetrics;

  constructor(options: WorkerOptions) {
    this.options = compileWorkerOptions(options);
    this.metrics = new OutboxMetrics(this.options.projection, this.options.sink.system);
  }

  get workerId(): string {
    return this.options.workerId;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('worker already started');
    this.running = true;
    this.keepAlive = setInterval(() => undefined, 1 << 30);
    const { pool } = this.options;
    const { rows } = await pool.query<{ on: boolean }>("select current_setting('track_commit_timestamp') = 'on' as on");
    this.commitTimestamps = rows[0]?.on === true;
    if (this.options.presence) {
      this.presence = new WorkerPresence(this.options.pool, this.options.logger);
      await this.presence.start();
    }
    if (this.options.listen) {
      this.listener = new OutboxListener(this.options.pool, () => this.kick(), this.options.logger);
      await this.listener.start();
    }
    this.scheduleReclaim();
    for (let i = 0; i < this.options.concurrency; i++) this.lanes.push(this.lane());
    this.options.logger.info(
      { worker_id: this.workerId, projection: this.options.projection, batch_size: this.options.batchSize, concurrency: this.options.concurrency, commit_timestamps: this.commitTimestamps },
      'outbox worker started',
    );
  }

  /**
   * New work (a notification, a test, a producer in the same process): wakes one idle lane, or,
   * when every lane is busy, makes the next one to finish claim again at once. One lane, not all:
   * a change or two would otherwise make every lane claim and all but one find nothing. A lane
   * that claims a full batch wakes the next (see lane()), so a backlog still gets them all.
   */
  kick(): void {
    this.kicked = true;
    this.wakeOne();
  }

  private wakeOne(): void {
    for (const w of this.waiters) {
      w();
      return;
    }
  }

  /** Wakes every idle lane (stopping; leases taken back from dead workers). */
  private wakeAll(): void {
    this.kicked = true;
    for (const w of [...this.waiters]) w();
  }

  /**
   * Stops claiming, lets in-flight batches finish within the grace period, then hands back
   * whatever is still held so another worker takes it over at once.
   */
  async stop(): Promise<void> {
    if (!this.running || this.stopping) return;
    this.stopping = true;
    clearTimeout(this.reclaimTimer);
    this.wakeAll();
    const finished = Promise.all(this.lanes).then(() => true);
    const inTime = await Promise.race([finished, sleep(this.options.shutdownGraceMs).then(() => false)]);
    if (!inTime) {
      for (const h of this.held) {
        h.lost = true;
        h.abort.abort(new ProjectionError('worker shutting down', 'shutdown', true));
        try {
          const n = await releaseEvents(this.options.pool, h.ids, h.token, this.workerId);
          this.options.logger.warn({ worker_id: this.workerId, released: n }, 'released unfinished events on shutdown');
        } catch (err) {
          this.options.logger.error({ err: shortMessage(err) }, 'could not release events; they return after lease expiry');
        }
      }
      await Promise.race([finished, sleep(1_000)]);
    }
    await this.listener?.close();
    this.listener = undefined;
    // Last: until every lease is settled or handed back, it tells others this worker is alive.
    await this.presence?.close();
    this.presence = undefined;
    clearInterval(this.keepAlive);
    this.running = false;
    this.options.logger.info({ worker_id: this.workerId, ...this.stats }, 'outbox worker stopped');
  }

  private scheduleReclaim(): void {
    const jitter = 0.8 + this.options.random() * 0.4;
    this.reclaimTimer = setTimeout(() => void this.reclaim(), Math.round(this.options.reclaimIntervalMs * jitter));
    this.reclaimTimer.unref();
  }

  private async reclaim(): Promise<void> {
    try {
      const { reclaimed: n, dead } = await reclaimExpired(this.options.pool, this.options.projection, 50, this.options.maxAttempts);
      if (n > 0 || dead > 0) {
        this.stats.reclaimed += n;
        this.stats.dead += dead;
        this.metrics.reclaimed(n, dead);
        this.options.logger.warn(
          { worker_id: this.workerId, reclaimed: n, dead_lettered: dead, projection: this.options.projection },
          'reclaimed events with expired leases',
        );
        this.wakeAll();
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
      // Not unref'd: a running worker keeps its process alive even when every connection is
      // gone (a Postgres restart closes them all, the LISTEN one included) until stop().
      const timer = setTimeout(done, this.options.pollIntervalMs);
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
        // A full batch: more is likely waiting, bring in an idle lane.
        if (n >= this.options.batchSize) this.wakeOne();
        else await this.waitForWork();
      } catch (err) {
        failures++;
        const delay = Math.min(5_000, 50 * 2 ** Math.min(failures, 7));
        this.options.logger.warn({ err: shortMessage(err), worker_id: this.workerId, retry_in_ms: delay }, 'claim loop error; backing off');
        await new Promise<void>((r) => setTimeout(r, delay)); // ref'd, as in waitForWork
      }
    }
  }

  /** Runs one claim → write → settle cycle; returns how many events it claimed. */
  private async runBatch(): Promise<number> {
    const o = this.options;
    const token = randomUUID();
    // The claim span times the statement, not the wait for a pooled connection: under load
    // that wait would make the process span start before the queue wait (database clock) ends.
    const client = await o.pool.connect();
    let rows: ClaimRow[];
    let claimStart: number;
    try {
      claimStart = nowMs();
      rows = await claimEvents(client, {
        projection: o.projection,
        limit: o.batchSize,
        leaseToken: token,
        owner: o.workerId,
        leaseMs: o.leaseMs,
        commitTimestamps: this.commitTimestamps,
        presence: this.presence?.key,
      });
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    client.release();
    const claimEnd = nowMs();
    if (rows.length === 0) return 0;
    this.stats.claimed += rows.length;
    this.stats.batches++;
    const events = rows.map((r) => toEvent(r, o.projection));
    // Postgres ran the claim after every claimed event was ready (committed, or due): under
    // load the statement can wait on the server after it was sent, and an event committed in
    // that wait would get a process span that starts before its producer's send span.
    let ready = claimStart;
    for (const e of events) if (e.readyAtMs > ready) ready = e.readyAtMs;
    claimStart = Math.min(ready, claimEnd);
    const held: Held = { ids: events.map((e) => e.id), token, abort: new AbortController(), spans: undefined, lost: false, beating: false, trace: undefined };
    this.held.add(held);
    const bt = new BatchTrace(o.projection, o.workerId, token, events, claimStart, claimEnd, o.sink.system, o.eventSpans);
    held.trace = bt;
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
        this.metrics.recordBatch(events, outcomes, settled, writeEnd - writeStart, Date.now());
        return events.length;
      });
    } finally {
      clearInterval(heartbeat);
      this.held.delete(held);
    }
  }

  /**
   * The sink's bulk write, abandoned as soon as the lease is lost or the worker hands the
   * batch back (a sink may ignore the signal; we stop waiting for it anyway).
   */
  private async write(events: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly ItemOutcome[]> {
    try {
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      let outcomes: readonly ItemOutcome[];
      try {
        outcomes = await Promise.race([this.options.sink.write(events, signal), aborted]);
      } finally {
        if (onAbort) signal.removeEventListener('abort', onAbort);
      }
      if (outcomes.length !== events.length) {
        throw new Error(`sink ${this.options.sink.name} answered ${outcomes.length} outcomes for ${events.length} events`);
      }
      return outcomes;
    } catch (err) {
      const o = classifyError(err);
      return events.map(() => o);
    }
  }

  /**
   * Renews the batch's lease (and records each event's span, so a reclaim can link to it).
   * Finding any event's lease gone means another attempt owns it: stop the work (abort) and
   * do not ack; the events still ours are handed back by `settle`.
   */
  private async heartbeat(held: Held): Promise<void> {
    if (held.lost || held.beating) return;
    held.beating = true;
    try {
      if (held.spans === undefined) {
        const bt = held.trace;
        const spans = bt?.enabled ? held.ids.map((_, i) => bt.spanRef(i)) : [];
        held.spans = spans.some((s) => s !== null) ? spans : null;
      }
      const kept = await renewLease(this.options.pool, held.ids, held.token, this.options.leaseMs, held.spans ?? undefined);
      held.trace?.renewed(nowMs(), this.options.leaseMs, kept);
      if (kept.size < held.ids.length && !held.lost) {
        held.lost = true;
        held.abort.abort(new ProjectionError('lease lost', 'lease_lost', true));
        this.options.logger.warn({ worker_id: this.workerId, lease_token: held.token, lost: held.ids.length - kept.size }, 'lease lost; abandoning the batch');
      }
    } catch (err) {
      this.options.logger.warn({ err: shortMessage(err) }, 'heartbeat failed; will try again');
    } finally {
      held.beating = false;
    }
  }

  /** Acks successes and schedules or dead-letters failures, each guarded by the lease token. */
  private async settle(events: readonly OutboxEvent[], outcomes: readonly ItemOutcome[], held: Held, bt: BatchTrace): Promise<Settled[]> {
    const o = this.options;
    const settled: Settled[] = new Array(events.length);
    if (held.lost) return this.abandon(events, held);
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
    // The whole batch succeeded (the usual case): ack it by its lease token. Otherwise by ids,
    // keeping the lease row for the retry/dead-letter statement that follows.
    const acked = !doneIds.length
      ? new Set<string>()
      : await this.guarded(doneIds, held.token, () =>
          fails.length === 0 ? completeBatch(o.pool, doneIds, held.token) : completeEvents(o.pool, doneIds, held.token),
        );
    const ids = fails.map((f) => f.id);
    const failed = fails.length ? await this.guarded(ids, held.token, () => failEvents(o.pool, fails, held.token)) : new Set<string>();
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
    const stale = settled.filter((x) => x.ackRows === 0).length;
    if (stale > 0) o.logger.warn({ worker_id: this.workerId, lease_token: held.token, stale }, 'stale ack: lease lost before the ack; another attempt owns these events');
    if (fails.length) o.logger.info({ worker_id: this.workerId, retried: fails.filter((f) => f.nextState === 'pending').length, dead: fails.filter((f) => f.nextState === 'dead').length, reasons: [...new Set(fails.map((f) => f.reason))] }, 'batch had failures');
    return settled;
  }

  /**
   * The batch's lease is gone (the heartbeat found another owner) or was handed back on
   * shutdown: no ack. Whatever is still ours under this token is handed back at once
   * (guarded, so it touches nothing another attempt owns); every event is settled as `lost`
   * with 0 rows, and its ack span records the stale ack.
   */
  private async abandon(events: readonly OutboxEvent[], held: Held): Promise<Settled[]> {
    let released = 0;
    if (!this.stopping) {
      try {
        released = await releaseEvents(this.options.pool, held.ids, held.token, this.workerId, 'lease_lost');
      } catch (err) {
        this.options.logger.warn({ err: shortMessage(err) }, 'could not hand back a lost batch; it returns after lease expiry');
      }
    }
    this.stats.staleAcks += events.length - released;
    this.options.logger.warn({ worker_id: this.workerId, lease_token: held.token, stale: events.length - released, released }, 'batch not acked: lease lost');
    return events.map(() => ({ outcome: 'lost', ackRows: 0 }));
  }

  /**
   * Runs a guarded settle statement; survives a dropped connection by running it again on a
   * fresh one. The first run may have committed before the connection died: the statement
   * is guarded (it cannot apply twice), and `selectSettled` recovers what the first run did,
   * so an ack that happened is never reported as a stale ack.
   */
  private async guarded(ids: readonly string[], token: string, fn: () => Promise<Set<string>>): Promise<Set<string>> {
    for (let attempt = 1; ; attempt++) {
      try {
        const got = await fn();
        if (attempt === 1) return got;
        for (const id of await selectSettled(this.options.pool, ids, token)) got.add(id);
        return got;
      } catch (err) {
        const c = classifyError(err);
        if (c.kind !== 'retry' || attempt >= 6 || (c.reason !== 'connection' && c.reason !== 'timeout' && c.reason !== 'unknown')) throw err;
        this.options.logger.warn({ err: shortMessage(err), worker_id: this.workerId, attempt }, 'settle failed on the database; trying again');
        await sleep(50 * 2 ** attempt);
      }
    }
  }
}
