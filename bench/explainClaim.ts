/** Profiling aid: EXPLAIN (ANALYZE, BUFFERS) of the claim and the ack on a 20,000-event backlog. */
import { startBenchPostgres } from './env.js';
import { producer } from './systems.js';
import { createPool } from '../src/db/pool.js';
import { claimEvents } from './../src/outbox/sql/claimEvents.js';

const pgh = await startBenchPostgres();
try {
  const url = await pgh.database('bench_loomtrace');
  const p = await producer('loomtrace', url);
  await p.clean();
  await p.enqueueBulk(20_000);
  const pool = createPool({ connectionString: url, max: 2 });
  const batch = Number(process.env['BENCH_BATCH'] ?? 200);
  await pool.query('vacuum analyze loomtrace.outbox');
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const rows = await claimEvents(pool, { projection: 'search', limit: batch, leaseToken: crypto.randomUUID(), owner: 'x', leaseMs: 30000, commitTimestamps: true });
    const t1 = performance.now();
    const ids = rows.map((r) => r.id);
    const tok = (await pool.query<{ t: string }>('select lease_token::text as t from loomtrace.outbox where id = $1', [ids[0]])).rows[0]!.t;
    const { rows: plan } = await pool.query(`explain (analyze, buffers) update loomtrace.outbox set state = 'done', done_at = clock_timestamp() where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed' returning id`, [ids, tok]);
    console.log(`claim ${batch}: ${(t1 - t0).toFixed(1)} ms`);
    if (i === 2) console.log(plan.map((r) => r['QUERY PLAN']).join('\n'));
  }
  await p.clean();
  await p.enqueueBulk(20_000);
  await pool.query('vacuum analyze loomtrace.outbox');
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await claimEvents(pool, { projection: 'search', limit: batch, leaseToken: crypto.randomUUID(), owner: 'x', leaseMs: 30000, commitTimestamps: true });
    console.log(`claim (new) ${batch}: ${(performance.now() - t0).toFixed(1)} ms`);
  }
  await pool.end();
  await p.close();
} finally {
  await pgh.stop();
}
