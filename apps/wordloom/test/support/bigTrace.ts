/**
 * A 10,000-span trace of a batch-like shape: one root, 2,000 events each with a queue wait and a
 * process span holding a claim, a write and an ack, many under a millisecond. Shared by
 * explorer-waterfall-scale.test.ts and bench/waterfallRender.ts so they measure the same thing.
 */
export const BIG_TRACE = 'c0ffee'.padEnd(32, '0');
export const BIG_TRACE_SPANS = 10_000;

const hex = (n: number) => n.toString(16).padStart(16, '0');

export function bigTraceSpans(traceId = BIG_TRACE): unknown[] {
  const t0 = BigInt(Date.now()) * 1_000_000n;
  const at = (us: number) => String(t0 + BigInt(us) * 1000n);
  const out: unknown[] = [{ traceId, spanId: hex(1), name: 'batch search', kind: 5, startTimeUnixNano: at(0), endTimeUnixNano: at(2_000_000) }];
  let id = 2;
  for (let e = 0; e < 2000; e++) {
    const base = e * 900;
    const attrs = [{ key: 'messaging.message.id', value: { intValue: String(e + 1) } }, { key: 'loomtrace.attempt', value: { intValue: '1' } }];
    out.push({ traceId, spanId: hex(id++), parentSpanId: hex(1), name: 'queue wait search', kind: 1, startTimeUnixNano: at(base), endTimeUnixNano: at(base + 300), attributes: attrs });
    const p = id++;
    out.push({ traceId, spanId: hex(p), parentSpanId: hex(1), name: 'process search', kind: 5, startTimeUnixNano: at(base + 300), endTimeUnixNano: at(base + 890), attributes: [...attrs, { key: 'loomtrace.outcome', value: { stringValue: 'done' } }] });
    for (const [name, from, to] of [['claim search', 300, 310], ['write search', 310, 800], ['ack search', 800, 805]] as const) {
      out.push({ traceId, spanId: hex(id++), parentSpanId: hex(p), name, kind: 3, startTimeUnixNano: at(base + from), endTimeUnixNano: at(base + to) });
    }
  }
  // 10,000 of the 10,001 spans made: the last event lost its ack.
  return out.slice(0, BIG_TRACE_SPANS);
}

/** Posts the spans to an OTLP/HTTP receiver as JSON, 2,000 a request. */
export async function postBigTrace(otlpUrl: string, traceId = BIG_TRACE): Promise<void> {
  const all = bigTraceSpans(traceId);
  for (let i = 0; i < all.length; i += 2000) {
    const body = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wordloom-worker' } }] }, scopeSpans: [{ spans: all.slice(i, i + 2000) }] }] };
    const r = await fetch(`${otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (r.status !== 200) throw new Error(`OTLP receiver answered ${r.status}`);
    await r.arrayBuffer();
  }
}
