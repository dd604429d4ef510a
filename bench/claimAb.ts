/**
 * Profiling aid: the claim → ack cycle alone (no worker, no sink), old claim SQL vs the
 * current one, alternated, on the same 20,000-event backlog. `node dist/bench/claimAb.js`.
 */
import { randomUUID } from 'node:crypto';
import { createPool } from '../src/db/pool.js';
import { claimEvents } from '../src/outbox/sql/claimEvents.js';
import { completeEvents } from '../src/outbox/sql/completeEvents.js';
import { fmt, median, startBenchPostgres } from './env.js';
import { oldClaimSql } from './oldClaim.js';
import { producer } from './systems.js';

const N = 20_000;
const batch = Number(process.env['BENCH_BATCH'] ?? 200);
/** BENCH_DONE_ROWS: acked rows already in the outbox before each run (default 0). */
const DONE = Number(process.env['BENCH_DONE_ROWS'] ?? 0);
const pgh = await startBenchPostgres();
try {
  const url = await pgh.database('bench_loomtrace');
  const p = await producer('loomtrace', url);
  const pool = createPool({ connectionString: url, max: 2 });
  const rates: Record<string, number[]> = { old: [], new: [] };
  for (let rep = 0; rep < 3; rep++) {
    for (const v of rep % 2 ? ['new', 'old'] : ['old', 'new']) {
      await p.clean();
      if (DONE > 0) {
        // History: acked events still in the table (kept for diagnosis until upkeep removes them).
        await p.enqueueBulk(DONE);
        await pool.query("update loomtrace.outbox set state = 'done', done_at = clock_timestamp()");
        await pool.query('vacuum analyze loomtrace.outbox');
      }
      await p.enqueueBulk(N);
      const t0 = performance.now();
      for (let done = 0; done < N; ) {
        const token = randomUUID();
        const args = { projection: 'search', limit: batch, leaseToken: token, owner: 'bench', leaseMs: 30_000, commitTimestamps: true };
        const rows = v === 'new'
          ? await claimEvents(pool, args)
          : (await pool.query<{ id: string }>({ name: 'old_claim', text: oldClaimSql(true), values: [args.projection, args.limit, token, args.owner, args.leaseMs] })).rows;
        if (rows.length === 0) throw new Error('ran dry');
        await completeEvents(pool, rows.map((r) => r.id), token);
        done += rows.length;
      }
      const r = (N * 1000) / (performance.now() - t0);
      rates[v]!.push(r);
      console.log(`${v} claim, batch ${batch}, ${fmt(DONE)} acked rows in the table: ${fmt(r)} events/s (one lane)`);
    }
  }
  console.log(`median old ${fmt(median(rates['old']!))}/s, new ${fmt(median(rates['new']!))}/s`);
  await pool.end();
  await p.close();
} finally {
  await pgh.stop();
}
