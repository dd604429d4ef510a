/**
 * Issue 14 (3), decision 0021: where a claimed row's Postgres CPU goes. One connection, no
 * contention: the backlog is claimed in batches of 500 (then acked by lease token, timed apart),
 * and the backend's own CPU (/proc) is read around the claims and around the acks. Variants,
 * alternated, medians: the claim as it is (`queue`), the claim by cursor of cursorClaimAb.ts
 * (`cursor`), and each returning the event id alone instead of its 20 columns (`…-ids`: what
 * producing the rows' columns costs); `queue-no-json`: the claim as it is with null for its two
 * jsonb columns, payload and attributes (what their output costs); `queue-no-ct`: the claim's
 * form for servers without track_commit_timestamp (no commit-timestamp lookup per row);
 * `queue-json`: the claim as it is with payload and attributes stored as `json` (text) instead of
 * `jsonb` (the column types changed on the emptied table for that variant, then back). `node dist/bench/claimRowCost.js` (BENCH_EVENTS, default
 * 20000; BENCH_RUNS, default 3).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { claimEvents, completeBatch } from '@loomtrace/outbox/internal';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { CURSOR_CLAIM, CURSOR_RESET, CURSOR_SCHEMA, ENQUEUE_NOTIFY_ONLY } from './cursorClaimSql.js';
import { enqueueBacklog } from './cycleAb.js';
import { ROOT, fmt, median, procCpuMs, startBenchPostgres } from './env.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 20_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

async function captured(run: (db: never) => Promise<unknown>, rows: unknown[]): Promise<string> {
  let text = '';
  await run({ query: async (q: { text: string }) => ((text = q.text), { rows }) } as never);
  return text;
}

/** The statement with its final select list cut to the event id. */
function idsOnly(sql: string, from: string, to: string, id: string): string {
  const a = sql.lastIndexOf(from);
  const b = sql.indexOf(to, a);
  if (a < 0 || b < 0) throw new Error('the claim statement changed: update claimRowCost.ts');
  return `${sql.slice(0, a)}select ${id} ${sql.slice(b)}`;
}

/** The statement returning null for its two jsonb columns (what their output costs: an upper bound for storing them as json). */
function noJson(sql: string): string {
  const cols = 'c.attributes, c.traceparent, c.tracestate, c.payload';
  const a = sql.lastIndexOf(cols);
  if (a < 0) throw new Error('the claim statement changed: update claimRowCost.ts');
  return `${sql.slice(0, a)}null::jsonb, c.traceparent, c.tracestate, null::jsonb${sql.slice(a + cols.length)}`;
}

const queueClaim = await captured((db) => claimEvents(db, { projection: 'search', limit: 1, leaseToken: randomUUID(), owner: 'x', leaseMs: 1, commitTimestamps: true }), []);
const queueClaimNoCommitTs = await captured((db) => claimEvents(db, { projection: 'search', limit: 1, leaseToken: randomUUID(), owner: 'x', leaseMs: 1, commitTimestamps: false }), []);
const ack = await captured((db) => completeBatch(db, [], randomUUID()), [{ n: 0 }]);
const CLAIMS = {
  queue: queueClaim,
  'queue-ids': idsOnly(queueClaim, 'select c.id::text', 'from claimed c join', 'c.id::text'),
  'queue-no-json': noJson(queueClaim),
  'queue-no-ct': queueClaimNoCommitTs,
  'queue-json': queueClaim,
  cursor: CURSOR_CLAIM,
  'cursor-ids': idsOnly(CURSOR_CLAIM, 'select cl.id::text', 'from claimed cl', 'cl.id::text'),
} as const;
type Variant = keyof typeof CLAIMS;

const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_claimrowcost');
const pool = createPool({ connectionString: url, max: 2, applicationName: 'bench-claimrowcost' });
let setJsonColumns: ((type: 'json' | 'jsonb') => Promise<void>) | undefined;
try {
  await migrateAll(pool);
  const enqueueWithQueueRow = readFileSync(path.join(ROOT, 'packages/outbox/migrations/000090_enqueue_without_speculative_insert.sql'), 'utf8');
  await pool.query(CURSOR_SCHEMA);
  const { rows: view } = await pool.query<{ def: string }>("select pg_get_viewdef('loomtrace.outbox_current'::regclass) as def");
  /** payload and attributes as `type` (on the emptied table; the view that reads them recreated). */
  setJsonColumns = async (type: 'json' | 'jsonb') => {
    await pool.query('drop view loomtrace.outbox_current');
    await pool.query(`alter table loomtrace.outbox alter column payload drop default,
                        alter column payload type ${type} using payload::${type}, alter column attributes type ${type} using attributes::${type},
                        alter column payload set default '{}'::${type}`);
    await pool.query(`create view loomtrace.outbox_current as ${view[0]!.def}`);
  };
  const variants = Object.keys(CLAIMS) as Variant[];
  const res = new Map(variants.map((v) => [v, { claim: [] as number[], ack: [] as number[] }]));
  const c = await pool.connect();
  const pid = (await c.query<{ p: number }>('select pg_backend_pid() as p')).rows[0]!.p;
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(k + run) % variants.length]!;
      await pool.query(v.startsWith('queue') ? enqueueWithQueueRow : ENQUEUE_NOTIFY_ONLY);
      await pool.query('truncate loomtrace.outbox, loomtrace.outbox_queue, loomtrace.outbox_leases');
      await setJsonColumns(v === 'queue-json' ? 'json' : 'jsonb');
      await pool.query(CURSOR_RESET);
      await enqueueBacklog(pool, N);
      const tokens: string[] = [];
      let n = 0;
      const c0 = procCpuMs(pid);
      for (;;) {
        const token = randomUUID();
        const r = await c.query({ name: `claim_${v}`, rowMode: 'array', text: CLAIMS[v], values: ['search', 500, token, 'x', 30_000, null] });
        if (r.rows.length === 0) break;
        n += r.rows.length;
        tokens.push(token);
      }
      const c1 = procCpuMs(pid);
      for (const t of tokens) await c.query({ name: 'ack', text: ack, values: [t] });
      const c2 = procCpuMs(pid);
      if (n !== N) throw new Error(`${v}: claimed ${n} of ${N}`);
      res.get(v)!.claim.push(((c1 - c0) * 1000) / n);
      res.get(v)!.ack.push(((c2 - c1) * 1000) / n);
      console.log(`  ${v.padEnd(10)} claim ${fmt(res.get(v)!.claim.at(-1)!, 1)} µs/event, ack ${fmt(res.get(v)!.ack.at(-1)!, 1)} µs/event (backend CPU)`);
    }
  }
  c.release();
  console.log(`\none connection, ${fmt(N)} events, batch 500, backend CPU, median of ${RUNS} (alternated):`);
  for (const v of variants) console.log(`  ${v.padEnd(10)} claim ${fmt(median(res.get(v)!.claim), 1)} µs/event, ack ${fmt(median(res.get(v)!.ack), 1)} µs/event`);
} finally {
  await setJsonColumns?.('jsonb').catch(() => undefined);
  await pool.end();
  await pgh.stop();
}
