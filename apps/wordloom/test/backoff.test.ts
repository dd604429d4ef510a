import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backoffBounds, backoffDelay, DEFAULT_BACKOFF, renderBackoffTable } from '@loomtrace/outbox';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

test('docs/backoff.md holds the table generated from backoffDelay', async () => {
  const doc = await readFile(path.join(root, 'docs', 'backoff.md'), 'utf8');
  const m = /<!-- backoff-table:start -->\n([\s\S]*?)\n<!-- backoff-table:end -->/.exec(doc);
  assert.ok(m, 'docs/backoff.md lacks the backoff-table markers');
  assert.equal(m[1]!.trim(), renderBackoffTable().trim(), 'the docs table no longer matches src/outbox/backoff.ts: regenerate it (see docs/backoff.md)');
  // The doc's formula names the defaults the code uses.
  assert.match(doc, new RegExp(`baseMs = ${DEFAULT_BACKOFF.baseMs}\\b`));
  assert.match(doc, new RegExp(`factor = ${DEFAULT_BACKOFF.factor}\\b`));
});

test('backoffDelay: capped, jittered within [exp/2, exp], never early, Retry-After is a floor', () => {
  const policy = { baseMs: 100, maxMs: 1_000, factor: 2 };
  for (let attempt = 1; attempt <= 12; attempt++) {
    const exp = Math.min(1_000, 100 * 2 ** (attempt - 1));
    assert.deepEqual(backoffBounds(attempt, policy), [exp / 2, exp]);
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const d = backoffDelay(attempt, policy, () => r);
      assert.ok(d >= exp / 2 && d <= exp, `attempt ${attempt} r=${r}: ${d} not in [${exp / 2}, ${exp}]`);
    }
  }
  assert.equal(backoffDelay(1, policy, () => 0, 5_000), 5_000, 'Retry-After longer than the backoff wins');
  assert.equal(backoffDelay(3, policy, () => 1, 10), 400, 'a short Retry-After never shortens the backoff');
  // Monotone in the attempt for a fixed random draw: later retries never come back sooner.
  let prev = 0;
  for (let a = 1; a <= 20; a++) {
    const d = backoffDelay(a, DEFAULT_BACKOFF, () => 0.5);
    assert.ok(d >= prev);
    prev = d;
  }
  assert.equal(backoffDelay(50, DEFAULT_BACKOFF, () => 1), DEFAULT_BACKOFF.maxMs, 'capped');
});
