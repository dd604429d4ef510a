/**
 * Fault injection for drills and tests: a wrapper around any Sink that answers 429 (with
 * Retry-After), 5xx, timeouts (a delay, then a timeout error) or partial bulk failures, at a
 * rate or every N calls, from a seeded PRNG, so anyone can watch retries, backoff, reclaims
 * and dead letters happen against a real projection.
 *
 * Configured by one string (the worker reads `LOOMTRACE_FAULTS`), parsed and validated once:
 *
 *   429:0.2,timeout:0.1,seed:42          20% of bulk calls answer 429, 10% time out
 *   5xx:/5                               every 5th bulk call answers 503
 *   partial:0.3                          each item fails alone with 429 at 30% (partial bulk)
 *   latency:200                          every bulk call takes 200 ms longer (abortable)
 *   timeout_ms:500,retry_after_ms:250    how long a timeout hangs; the Retry-After sent with 429
 *   cap:3                                never inject into an event past its 3rd attempt
 *   poison:5xx                           events whose payload has `"__poison": true` always fail
 *                                        (429 | 5xx | timeout: retryable, dead after max attempts;
 *                                        fail: non-retryable 400, dead at once)
 *
 * Decisions never look at payload content except the `__poison` marker, and nothing about
 * the payload is logged or put on spans.
 */
import { ProjectionError, WRITTEN, type ItemOutcome } from '@loomtrace/outbox';
import type { Sink } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';

/** A rate in (0, 1], or every Nth call. */
export type FaultTrigger = { readonly rate: number } | { readonly every: number };

export interface FaultSpec {
  readonly http429?: FaultTrigger;
  readonly http5xx?: FaultTrigger;
  readonly timeout?: FaultTrigger;
  /** Per item: each item of a bulk call fails alone (429) at this rate. */
  readonly partial?: FaultTrigger;
  readonly latencyMs: number;
  readonly timeoutMs: number;
  readonly retryAfterMs: number;
  /** Inject only into events at or below this attempt number. */
  readonly cap: number;
  readonly poison?: 'http_429' | 'http_5xx' | 'timeout' | 'fail';
  readonly seed: number;
}

const TRIGGER_KEYS = { '429': 'http429', '5xx': 'http5xx', '503': 'http5xx', timeout: 'timeout', partial: 'partial' } as const;
const POISON = { '429': 'http_429', '5xx': 'http_5xx', '503': 'http_5xx', timeout: 'timeout', fail: 'fail' } as const;

function parseTrigger(key: string, raw: string): FaultTrigger {
  if (raw.startsWith('/')) {
    const n = Number(raw.slice(1));
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`LOOMTRACE_FAULTS: "${key}:${raw}": every-N must be /1 to /1000000`);
    return { every: n };
  }
  const r = Number(raw);
  if (raw === '' || !Number.isFinite(r) || r <= 0 || r > 1) {
    throw new Error(`LOOMTRACE_FAULTS: "${key}:${raw}": a rate must be a number in (0, 1] (e.g. 0.2) or /N for every Nth call`);
  }
  return { rate: r };
}

function parseInt0(key: string, raw: string, max: number): number {
  const n = Number(raw);
  if (raw === '' || !Number.isInteger(n) || n < 0 || n > max) throw new Error(`LOOMTRACE_FAULTS: "${key}:${raw}": must be an integer from 0 to ${max}`);
  return n;
}

/**
 * Parses a fault spec such as `429:0.2,timeout:0.1,seed:42`; throws with a precise message.
 * An empty or missing spec gives `undefined` (no faults).
 */
export function parseFaultSpec(spec: string | undefined): FaultSpec | undefined {
  if (spec === undefined || spec.trim() === '') return undefined;
  const out: {
    -readonly [K in keyof FaultSpec]: FaultSpec[K];
  } = { latencyMs: 0, timeoutMs: 1_000, retryAfterMs: 500, cap: Number.MAX_SAFE_INTEGER, seed: 1 };
  const seen = new Set<string>();
  for (const part of spec.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const i = item.indexOf(':');
    if (i <= 0) throw new Error(`LOOMTRACE_FAULTS: "${item}": expected key:value (keys: 429, 5xx, timeout, partial, latency, timeout_ms, retry_after_ms, cap, poison, seed)`);
    const key = item.slice(0, i).trim().toLowerCase();
    const raw = item.slice(i + 1).trim();
    if (seen.has(key)) throw new Error(`LOOMTRACE_FAULTS: "${key}" is given twice`);
    seen.add(key);
    if (key in TRIGGER_KEYS) {
      out[TRIGGER_KEYS[key as keyof typeof TRIGGER_KEYS]] = parseTrigger(key, raw);
    } else if (key === 'latency') out.latencyMs = parseInt0(key, raw, 600_000);
    else if (key === 'timeout_ms') out.timeoutMs = parseInt0(key, raw, 600_000);
    else if (key === 'retry_after_ms') out.retryAfterMs = parseInt0(key, raw, 600_000);
    else if (key === 'cap') {
      out.cap = parseInt0(key, raw, 1_000_000);
      if (out.cap < 1) throw new Error(`LOOMTRACE_FAULTS: "cap:${raw}": must be at least 1`);
    } else if (key === 'seed') out.seed = parseInt0(key, raw, 2 ** 32 - 1);
    else if (key === 'poison') {
      const p = POISON[raw.toLowerCase() as keyof typeof POISON];
      if (!p) throw new Error(`LOOMTRACE_FAULTS: "poison:${raw}": must be one of 429, 5xx, timeout, fail`);
      out.poison = p;
    } else {
      throw new Error(`LOOMTRACE_FAULTS: unknown key "${key}" (keys: 429, 5xx, timeout, partial, latency, timeout_ms, retry_after_ms, cap, poison, seed)`);
    }
  }
  return Object.freeze(out);
}

/** mulberry32: a small, fast, seeded PRNG; the same seed gives the same drill. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

type WholeFault = 'http_429' | 'http_5xx' | 'timeout';

/** What the drill injected so far in this process (for logs and tests). */
export interface FaultCounts {
  calls: number;
  http_429: number;
  http_5xx: number;
  timeout: number;
  partial: number;
  poison: number;
}

/** Wraps a sink with the faults of `spec`. The inner sink sees only the items not failed here. */
export class FaultySink implements Sink {
  readonly name: string;
  readonly system: string;
  readonly counts: FaultCounts = { calls: 0, http_429: 0, http_5xx: 0, timeout: 0, partial: 0, poison: 0 };
  private readonly random: () => number;

  constructor(
    private readonly inner: Sink,
    readonly spec: FaultSpec,
  ) {
    this.name = inner.name;
    this.system = inner.system;
    this.random = seededRandom(spec.seed);
  }

  private fires(t: FaultTrigger | undefined): boolean {
    if (!t) return false;
    if ('every' in t) return this.counts.calls % t.every === 0;
    return this.random() < t.rate;
  }

  private outcome(kind: WholeFault | 'fail'): ItemOutcome {
    const s = this.spec;
    switch (kind) {
      case 'http_429':
        return { kind: 'retry', reason: 'http_429', message: 'injected fault: 429 Too Many Requests', statusCode: 429, retryAfterMs: s.retryAfterMs };
      case 'http_5xx':
        return { kind: 'retry', reason: 'http_5xx', message: 'injected fault: 503 Service Unavailable', statusCode: 503 };
      case 'timeout':
        return { kind: 'retry', reason: 'timeout', message: `injected fault: timed out after ${s.timeoutMs} ms` };
      case 'fail':
        return { kind: 'fail', reason: 'http_4xx', message: 'injected fault: 400 poison event', statusCode: 400 };
    }
  }

  private wholeError(kind: WholeFault): ProjectionError {
    const o = this.outcome(kind) as Extract<ItemOutcome, { kind: 'retry' }>;
    return new ProjectionError(o.message, o.reason, true, o.statusCode, o.retryAfterMs);
  }

  async write(events: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly ItemOutcome[]> {
    const s = this.spec;
    this.counts.calls++;
    await delay(s.latencyMs, signal);
    const outcomes: (ItemOutcome | undefined)[] = new Array(events.length).fill(undefined);
    const eligible = (e: OutboxEvent) => e.attempt <= s.cap;
    let poisoned = 0;
    if (s.poison) {
      events.forEach((e, i) => {
        if (e.payload['__poison'] === true) {
          outcomes[i] = this.outcome(s.poison!);
          poisoned++;
        }
      });
      this.counts.poison += poisoned;
    }
    // At most one whole-call fault per call, drawn in a fixed order so a seed replays exactly.
    const whole: WholeFault | undefined = this.fires(s.timeout) ? 'timeout' : this.fires(s.http429) ? 'http_429' : this.fires(s.http5xx) ? 'http_5xx' : undefined;
    if (whole) {
      const hit = events.filter((e, i) => outcomes[i] === undefined && eligible(e)).length;
      if (hit > 0) this.counts[whole]++;
      if (whole === 'timeout' && hit > 0) await delay(s.timeoutMs, signal);
      if (poisoned === 0 && hit === events.length) throw this.wholeError(whole);
      // Some events are past the cap (or poisoned): the fault becomes per item.
      events.forEach((e, i) => {
        if (outcomes[i] === undefined && eligible(e)) outcomes[i] = this.outcome(whole);
      });
    }
    if (s.partial) {
      events.forEach((e, i) => {
        if (outcomes[i] === undefined && eligible(e) && this.fires(s.partial)) {
          outcomes[i] = this.outcome('http_429');
          this.counts.partial++;
        }
      });
    }
    const rest: number[] = [];
    outcomes.forEach((o, i) => {
      if (o === undefined) rest.push(i);
    });
    if (rest.length > 0) {
      const answered = await this.inner.write(rest.map((i) => events[i]!), signal);
      if (answered.length !== rest.length) throw new Error(`sink ${this.inner.name} answered ${answered.length} outcomes for ${rest.length} events`);
      rest.forEach((i, k) => (outcomes[i] = answered[k] ?? WRITTEN));
    }
    return outcomes as ItemOutcome[];
  }

  ping(): Promise<void> {
    return this.inner.ping ? this.inner.ping() : Promise.resolve();
  }

  close(): Promise<void> {
    return this.inner.close ? this.inner.close() : Promise.resolve();
  }
}

/** Wraps `sink` when a spec is given; returns it unchanged otherwise. */
export function withFaults(sink: Sink, spec: FaultSpec | undefined): Sink {
  return spec ? new FaultySink(sink, spec) : sink;
}
