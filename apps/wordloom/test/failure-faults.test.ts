/** The fault-injecting sink on its own: parsing with precise errors, seeded decisions, partial bulks, caps, poison. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultySink, parseFaultSpec, seededRandom } from '../src/projection/faults.js';
import { classifyError, WRITTEN, type ItemOutcome } from '@loomtrace/outbox';
import type { Sink } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';

function ev(id: number, attempt = 1, payload: Record<string, unknown> = {}): OutboxEvent {
  return {
    id: String(id), projection: 'search', eventType: 'block.updated', aggregateType: 'block', aggregateId: `b${id}`, aggregateVersion: 1,
    attributes: null, requestId: null, traceparent: null, tracestate: null, payload, attempt, previousOwner: null, previousToken: null,
    reclaimed: false, previousLeaseMs: null, lastReason: null, lastDelayMs: null, lastAttemptSpan: null, readyAtMs: 0, readySource: 'insert_time', claimedAtMs: 0,
  };
}

/** A sink that records what reached it. */
function recorder(): Sink & { seen: string[] } {
  const seen: string[] = [];
  return { name: 'rec', system: 'test', seen, async write(events) { seen.push(...events.map((e) => e.id)); return events.map(() => WRITTEN); } };
}

test('parseFaultSpec: valid specs, and precise errors for bad ones', () => {
  const s = parseFaultSpec('429:0.2, timeout:0.1 ,seed:42,5xx:/5,timeout_ms:50,cap:3,poison:5xx,latency:10,retry_after_ms:250');
  assert.ok(s);
  assert.deepEqual(s.http429, { rate: 0.2 });
  assert.deepEqual(s.http5xx, { every: 5 });
  assert.equal(s.seed, 42);
  assert.equal(s.cap, 3);
  assert.equal(s.poison, 'http_5xx');
  assert.equal(s.retryAfterMs, 250);
  assert.ok(Object.isFrozen(s));
  assert.equal(parseFaultSpec(undefined), undefined);
  assert.equal(parseFaultSpec('  '), undefined);
  assert.throws(() => parseFaultSpec('429:1.5'), /"429:1.5": a rate must be a number in \(0, 1\]/);
  assert.throws(() => parseFaultSpec('5xx:/0'), /every-N must be/);
  assert.throws(() => parseFaultSpec('oops:1'), /unknown key "oops"/);
  assert.throws(() => parseFaultSpec('429'), /expected key:value/);
  assert.throws(() => parseFaultSpec('seed:1,seed:2'), /"seed" is given twice/);
  assert.throws(() => parseFaultSpec('poison:maybe'), /must be one of/);
  assert.throws(() => parseFaultSpec('cap:0'), /at least 1/);
});

test('the same seed gives the same drill', async () => {
  const run = async () => {
    const sink = new FaultySink(recorder(), parseFaultSpec('429:0.3,partial:0.2,seed:7')!);
    const kinds: string[] = [];
    for (let b = 0; b < 30; b++) {
      try {
        const out = await sink.write([ev(1), ev(2), ev(3)], new AbortController().signal);
        kinds.push(out.map((o) => o.kind).join(''));
      } catch (err) {
        kinds.push(classifyError(err).kind === 'retry' ? 'throw-retry' : 'throw-fail');
      }
    }
    return kinds;
  };
  const a = await run();
  assert.deepEqual(a, await run());
  assert.ok(a.includes('throw-retry'), 'some whole-bulk 429s');
  assert.ok(a.some((k) => k.includes('retry') && k.includes('written')), 'some partial bulks');
  const r = seededRandom(1);
  const draws = Array.from({ length: 1000 }, r);
  assert.ok(draws.every((d) => d >= 0 && d < 1));
});

test('whole-bulk 429 carries Retry-After; every-N counts calls; a timeout waits then fails as a timeout', async () => {
  const inner = recorder();
  const sink = new FaultySink(inner, parseFaultSpec('429:/2,retry_after_ms:300')!);
  await sink.write([ev(1)], new AbortController().signal); // call 1: passes
  await assert.rejects(sink.write([ev(2)], new AbortController().signal), (err) => {
    const o = classifyError(err);
    return o.kind === 'retry' && o.reason === 'http_429' && o.retryAfterMs === 300 && o.statusCode === 429;
  });
  assert.deepEqual(inner.seen, ['1'], 'the failed bulk never reached the projection');
  const slow = new FaultySink(recorder(), parseFaultSpec('timeout:/1,timeout_ms:30')!);
  await assert.rejects(slow.write([ev(1)], new AbortController().signal), (err) => {
    const o = classifyError(err);
    return o.kind === 'retry' && o.reason === 'timeout';
  });
  assert.equal(slow.counts.timeout, 1);
  // An abort (lease lost) cuts the injected delay short.
  const ac = new AbortController();
  const hang = new FaultySink(recorder(), parseFaultSpec('latency:60000')!);
  const p = hang.write([ev(1)], ac.signal);
  ac.abort(new Error('lease lost'));
  await assert.rejects(p, /lease lost/);
});

test('cap: events past their Nth attempt are never hit; poison always is', async () => {
  const inner = recorder();
  const sink = new FaultySink(inner, parseFaultSpec('5xx:/1,cap:2,poison:fail')!);
  const out: readonly ItemOutcome[] = await sink.write([ev(1, 1), ev(2, 3), ev(3, 9, { __poison: true })], new AbortController().signal);
  assert.equal(out[0]!.kind, 'retry');
  assert.equal(out[1]!.kind, 'written', 'attempt 3 > cap 2');
  assert.equal(out[2]!.kind, 'fail');
  assert.deepEqual(inner.seen, ['2']);
  assert.equal(sink.counts.poison, 1);
});
