/**
 * Prototype measurement for "what would close the drain gap": the claim → ack cycle done as
 * today (claim statement, then ack statement: two round trips and two commits per batch)
 * against one statement that acks batch k and claims batch k+1 together, alternated on the
 * same backlog, one lane, no worker. `node dist/bench/ackClaimAb.js`. The combined SQL lives
 * only here: using it needs the worker's lane loop to change (src/outbox/worker.ts).
 */
import { randomUUID } from 'node:crypto';
import { createPool } from '../src/db/pool.js';
import { claimEvents } from '../src/outbox/sql/claimEvents.js';
import { completeEvents } from '../src/outbox/sql/completeEvents.js';
import { fmt, median, startBenchPostgres } from './env.js';
import { producer } from './systems.js';

const N = 20_000;
const batch = Number(process.env['BENCH_BATCH'] ?? 200);

const COMBINED = `with acked as (
    update loomtrace.outbox
       set state = 'done', done_at = clock_timestamp()
     where id = any($6::bigint[]) and lease_token = $7 and state = 'claimed'
    returning id
  ), picked as (
    select id, pg_xact_commit_timestamp(xmin) as committed_at
      from loomtrace.outbox
     where state = 'pending' and projection = $1 and run_at <= clock_timestamp()
     order by run_at, id
     limit $2
       for update skip locked
  ), claimed as (
    update loomtrace.outbox o
       set state = 'claimed', attempts = o.attempts + 1, lease_token = $3, lease_owner = $4,
           claimed_at = clock_timestamp(),
           lease_expires_at = clock_timestamp() + make_interval(secs => $5::float8 / 1000)
     where o.id = any(array(select id from picked))
    returning o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.library_id,
              o.request_id, o.traceparent, o.tracestate, o.payload, o.attempts, o.run_at, o.enqueued_at, o.claimed_at
  )
  select c.*, p.committed_at, null::bigint[] as acked_ids
    from claimed c join picked p on p.id = c.id
  union all
  -- The acked ids once, in a row of their own (not repeated on every claimed row).
  select null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
         (select array_agg(id) from acked)`;

const pgh = await startBenchPostgres();
try {
  const url = await pgh.database('bench_loomtrace');
  const p = await producer('loomtrace', url);
  const pool = createPool({ connectionString: url, max: 2 });
  const rates: Record<string, number[]> = { separate: [], combined: [] };
  for (let rep = 0; rep < 3; rep++) {
    for (const v of rep % 2 ? ['combined', 'separate'] : ['separate', 'combined']) {
      await p.clean();
      await p.enqueueBulk(N);
      const t0 = performance.now();
      let acked = 0;
      if (v === 'separate') {
        for (;;) {
          const token = randomUUID();
          const rows = await claimEvents(pool, { projection: 'search', limit: batch, leaseToken: token, owner: 'bench', leaseMs: 30_000, commitTimestamps: true });
          if (rows.length === 0) break;
          acked += (await completeEvents(pool, rows.map((r) => r.id), token)).size;
        }
      } else {
        let prevIds: string[] = [];
        let prevToken: string | null = null;
        for (let k = 0; ; k++) {
          const token = randomUUID();
          if (process.env['BENCH_EXPLAIN'] && k === 20) {
            const c = await pool.connect();
            await c.query('begin');
            const { rows: plan } = await c.query<{ 'QUERY PLAN': string }>({ text: `explain (analyze, buffers) ${COMBINED}`, values: ['search', batch, token, 'bench', 30_000, prevIds, prevToken] });
            console.log(plan.map((r) => r['QUERY PLAN']).join('\n').replace(/\{[0-9,]{200,}\}/g, '{…}'));
            await c.query('rollback');
            c.release();
          }
          const { rows } = await pool.query<{ id: string | null; acked_ids: string[] | null }>({
            name: 'bench_ack_claim',
            text: COMBINED,
            values: ['search', batch, token, 'bench', 30_000, prevIds, prevToken],
          });
          acked += rows[rows.length - 1]?.acked_ids?.length ?? 0;
          const claimed = rows.filter((r) => r.id !== null).map((r) => r.id!);
          if (claimed.length === 0) break;
          prevIds = claimed;
          prevToken = token;
        }
      }
      if (acked !== N) throw new Error(`${v}: acked ${acked} of ${N}`);
      const r = (N * 1000) / (performance.now() - t0);
      rates[v]!.push(r);
      console.log(`${v.padEnd(9)} batch ${batch}: ${fmt(r)} events/s (one lane)`);
    }
  }
  console.log(`median separate ${fmt(median(rates['separate']!))}/s, combined ${fmt(median(rates['combined']!))}/s`);
  await pool.end();
  await p.close();
} finally {
  await pgh.stop();
}
