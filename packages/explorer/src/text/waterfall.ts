/**
 * A trace drawn in the terminal: spans nested by parent, bars on a shared time axis, the
 * queue wait drawn with its own glyph, and each process attempt under a labelled heading.
 */
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

/** Control characters out: span names come from senders and must not drive the terminal. */
const safe = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

export function renderWaterfall(spans: readonly WaterfallSpan[], opts: { width?: number; labelWidth?: number } = {}): string {
  if (spans.length === 0) return '(no spans)';
  const width = Math.max(20, opts.width ?? 50);
  const labelWidth = Math.max(20, opts.labelWidth ?? 46);
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
  const lines: string[] = [`${'span'.padEnd(labelWidth)} ${'0'.padEnd(width - 8)}${fmtMs(total / 1e6).padStart(8)}`];
  // An attempt's heading goes above its first span (the queue wait, then the process span).
  const processOf = new Map<string, WaterfallSpan>();
  for (const s of spans) if (s.name.startsWith('process ') && s.attributes['loomtrace.attempt'] !== undefined) processOf.set(`${s.parentSpanId}/${String(s.attributes['loomtrace.attempt'])}`, s);
  const headed = new Set<string>();
  for (const [s, depth] of orderSpans(spans)) {
    const attempt = s.attributes['loomtrace.attempt'];
    const key = `${s.parentSpanId}/${String(attempt)}`;
    if (attempt !== undefined && (s.name.startsWith('process ') || s.name.startsWith('queue wait')) && !headed.has(key)) {
      headed.add(key);
      const p = processOf.get(key) ?? s;
      const bits = [`attempt ${String(attempt)}`];
      if (p.attributes['loomtrace.lease.owner']) bits.push(String(p.attributes['loomtrace.lease.owner']));
      if (p.attributes['loomtrace.outcome']) bits.push(String(p.attributes['loomtrace.outcome']));
      if (p.attributes['loomtrace.retry.reason']) bits.push(`after ${String(p.attributes['loomtrace.retry.reason'])}`);
      if (p.attributes['loomtrace.reclaimed'] === true) bits.push('reclaimed');
      lines.push(`${' '.repeat(depth * 2)}── ${safe(bits.join(' · '))}`);
    }
    const queue = s.name.startsWith('queue wait');
    const a = col(s.startTimeUnixNano);
    const b = Math.max(a + 1, col(s.endTimeUnixNano) + 1);
    const glyph = queue ? '░' : s.status.code === 2 ? '▓' : '█';
    const bar = `${' '.repeat(a)}${glyph.repeat(Math.min(width, b) - a)}`.padEnd(width);
    const label = `${' '.repeat(depth * 2)}${safe(s.name)} [${safe(s.service)}]`;
    const cut = label.length > labelWidth ? `${label.slice(0, labelWidth - 1)}…` : label.padEnd(labelWidth);
    const dur = Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;
    lines.push(`${cut} ${bar} ${fmtMs(dur)}${s.status.code === 2 ? ' ERROR' : ''}`);
  }
  lines.push('', '█ span   ░ queue wait (commit → claim)   ▓ error');
  return lines.join('\n');
}
