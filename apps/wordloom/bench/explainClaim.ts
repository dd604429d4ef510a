/**
 * Profiling aid: EXPLAIN (ANALYZE, BUFFERS) of the current claim and ack on a 20,000-event
 * backlog. `node dist/bench/explainClaim.js` (BENCH_BATCH, default 200).
 */
import { randomUUID } from 'node:crypto';
import { createPool } from '@loomtrace/outbox';
import { claimEvents, completeBatch } from '@loomtrace/outbox/internal';
import { startBenchPostgres } from './env.js';
import { producer } from './systems.js';

const batch = Number(process.env['BENCH_BATCH'] ?? 200);

/** The real ack statement's text, captured from completeBatch with a recording Queryable. */
async function ackText(): Promise<string> {
  let text = '';
  const rec = { query: async (q: { text: string }) => ((text = q.text), { rows: [{ n: 0 }] }) };
  await completeBatch(rec as never, [], randomUUID());
  return text;
}
const pgh = await startBenchPostgres();
try {
  const url = await pgh.database('bench_loomtrace');
  const p = await producer('loomtrace', url);
  await p.clean();
  await p.enqueueBulk(20_000);
  // One connection: the claim's prepared statement (protocol level) is then EXPLAIN EXECUTE-able.
  const pool = createPool({ connectionString: url, max: 1 });
  await pool.query('vacuum analyze loomtrace.outbox');
  // Warm up the prepared claim (the plan Postgres settles on after five runs is the one that matters).
  for (let i = 0; i < 6; i++) {
    const token = randomUUID();
    await claimEvents(pool, { projection: 'search', limit: batch, leaseToken: token, owner: 'explain', leaseMs: 30_000, commitTimestamps: true });
    if (i < 5) continue;
    const show = async (label: string, text: string, values: unknown[]) => {
      const { rows: plan } = await pool.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${text}`, values);
      console.log(`--- ${label}\n${plan.map((r) => r['QUERY PLAN']).join('\n').replace(/\{[0-9,]{200,}\}/g, '{…ids…}')}`);
    };
    await show('claim (prepared, generic plan)', `execute loomtrace_claim_ct('search', ${batch}, '${randomUUID()}', 'explain', 30000, null)`, []);
    // The ack of a fully successful batch, by its lease token: completeBatch's own statement.
    await show('ack by lease token', await ackText(), [token]);
  }
  await pool.end();
  await p.close();
} finally {
  await pgh.stop();
}
