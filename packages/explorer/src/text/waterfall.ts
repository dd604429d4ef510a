/**
 * A trace drawn in the terminal: spans nested by parent, bars on a shared time axis, the
 * queue wait drawn with its own glyph, and each process attempt under a labelled heading
 * naming its own outcome and failure; every line fits the given width.
 */
import { MIN_WIDTH, fit, pad, safe } from './columns.js';
import type { TraceOutboxEvent } from '../query/sql/traceOutbox.js';
export interface WaterfallSpan {
  spanId: string;
  parentSpanId: string | null;
  name: string;
  service: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: number; message: string | null };
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
}

/** Depth-first, children by start time; spans whose parent was not stored are roots. */
export function orderSpans<T extends { spanId: string; parentSpanId: string | null }>(spans: readonly T[]): [T, number][] {
  const ids = new Set(spans.map((s) => s.spanId));
  const kids = new Map<string, T[]>();
  const roots: T[] = [];
  for (const s of spans) {
    if (s.parentSpanId && ids.has(s.parentSpanId)) {
      const list = kids.get(s.parentSpanId) ?? [];
      list.push(s);
      kids.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const out: [T, number][] = [];
  const stack: [T, number][] = roots.slice().reverse().map((s) => [s, 0]);
  while (stack.length) {
    const [s, d] = stack.pop()!;
    out.push([s, d]);
    const c = kids.get(s.spanId) ?? [];
    for (let i = c.length - 1; i >= 0; i--) stack.push([c[i]!, d + 1]);
  }
  return out;
}

export function fmtMs(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export interface WaterfallOptions {
  /** The whole line's width in columns (label, bar and duration together); 80 by default. */
  lineWidth?: number;
  /** The outbox's record of the trace's events: lost attempts and dead letters no span tells of. */
  outbox?: readonly TraceOutboxEvent[];
}

const why = (r: string | null | undefined) => (r === 'worker_gone' ? 'worker gone' : r === 'lease_expired' ? 'lease expired' : r ?? '');

/** An attempt's heading: its own outcome and its own failure (not the previous attempt's). */
function heading(attempt: number, p: WaterfallSpan, next: WaterfallSpan | undefined, history: TraceOutboxEvent['history'][number] | undefined): string {
  const bits = [`attempt ${attempt}`];
  const owner = p.attributes['loomtrace.lease.owner'] ?? history?.owner;
  if (owner) bits.push(String(owner));
  const outcome = p.attributes['loomtrace.outcome'] ?? history?.outcome;
  if (outcome) bits.push(String(outcome));
  const reason = history?.reason ?? (outcome && outcome !== 'done' ? next?.attributes['loomtrace.retry.reason'] : undefined);
  if (reason) bits.push(why(String(reason)));
  if (p.attributes['loomtrace.reclaimed'] === true) bits.push(`reclaimed${p.attributes['loomtrace.lease.previous_owner'] ? ` from ${String(p.attributes['loomtrace.lease.previous_owner'])}` : ''}`);
  return bits.join(' · ');
}

export function renderWaterfall(spans: readonly WaterfallSpan[], opts: WaterfallOptions = {}): string {
  if (spans.length === 0) return '(no spans)';
  const lineWidth = Math.max(MIN_WIDTH, opts.lineWidth ?? 80);
  // label, space, bar (at least 20), space, duration (9) and " ERROR" (6)
  const labelWidth = Math.max(16, Math.min(46, lineWidth - 2 - 15 - 20));
  const width = Math.max(8, lineWidth - labelWidth - 2 - 15);
  let t0 = BigInt(spans[0]!.startTimeUnixNano);
  let t1 = BigInt(spans[0]!.endTimeUnixNano);
  for (const s of spans) {
    const a = BigInt(s.startTimeUnixNano);
    const b = BigInt(s.endTimeUnixNano);
    if (a < t0) t0 = a;
    if (b > t1) t1 = b;
  }
  const total = Number(t1 - t0) || 1;
  const col = (ns: string) => Math.min(width - 1, Math.floor((Number(BigInt(ns) - t0) / total) * width));
  const lines: string[] = [`${pad('span', labelWidth)} ${pad('0', width - 8)}${fmtMs(total / 1e6).padStart(8)}`];
  const history = new Map<string, TraceOutboxEvent['history'][number]>();
  for (const e of opts.outbox ?? []) for (const h of e.history) history.set(`${e.id}/${h.attempt}`, h);
  // An attempt's heading goes above its first span (the queue wait, then the process span).
  const processOf = new Map<string, WaterfallSpan>();
  const keyOf = (s: WaterfallSpan, n: unknown) => `${String(s.attributes['messaging.message.id'] ?? s.parentSpanId)}/${String(n)}`;
  for (const s of spans) if (s.name.startsWith('process ') && s.attributes['loomtrace.attempt'] !== undefined) processOf.set(keyOf(s, s.attributes['loomtrace.attempt']), s);
  const headed = new Set<string>();
  for (const [s, depth] of orderSpans(spans)) {
    const attempt = s.attributes['loomtrace.attempt'];
    const key = keyOf(s, attempt);
    if (typeof attempt === 'number' && (s.name.startsWith('process ') || s.name.startsWith('queue wait')) && !headed.has(key)) {
      headed.add(key);
      const p = processOf.get(key) ?? s;
      const next = processOf.get(keyOf(s, attempt + 1));
      const h = history.get(`${String(s.attributes['messaging.message.id'])}/${attempt}`);
      lines.push(`${' '.repeat(depth * 2)}── ${safe(heading(attempt, p, next, h))}${!processOf.has(key) && h ? `${h.delayMs === null ? '' : ` · held ${fmtMs(h.delayMs)}`} · no span (outbox)` : ''}`);
    }
    const queue = s.name.startsWith('queue wait');
    const a = col(s.startTimeUnixNano);
    const b = Math.max(a + 1, col(s.endTimeUnixNano) + 1);
    const glyph = queue ? '░' : s.status.code === 2 ? '▓' : '█';
    const bar = `${' '.repeat(a)}${glyph.repeat(Math.min(width, b) - a)}`.padEnd(width);
    const label = `${' '.repeat(depth * 2)}${safe(s.name)} [${safe(s.service)}]`;
    const dur = Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;
    lines.push(`${pad(label, labelWidth)} ${bar} ${fmtMs(dur)}${s.status.code === 2 ? ' ERROR' : ''}`);
  }
  // What the outbox knows and no span says: attempts whose worker died, dead letters.
  for (const e of opts.outbox ?? []) {
    for (const h of e.history) {
      if (headed.has(`${e.id}/${h.attempt}`) || (h.outcome !== 'lost' && h.reason !== 'worker_gone' && h.reason !== 'lease_expired')) continue;
      lines.push(`── event ${e.id} attempt ${h.attempt} · ${h.owner ?? '?'} · ${h.outcome} · ${why(h.reason)} · held ${h.delayMs === null ? '?' : fmtMs(h.delayMs)} · no span (outbox)`);
    }
    if (e.state === 'dead') lines.push(`── event ${e.id} dead-lettered after ${e.attempts} attempt(s)${e.lastReason ? ` · ${why(e.lastReason)}` : ''}${e.lastError ? `: ${e.lastError}` : ''}`);
  }
  lines.push('', '█ span  ░ queue wait (commit or run_at → claim)  ▓ error');
  return lines.map((l) => fit(safe(l), lineWidth)).join('\n');
}
