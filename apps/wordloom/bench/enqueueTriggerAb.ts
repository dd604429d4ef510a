/**
 * Issue 14 (5): the PATCH statement's Postgres side with the enqueue trigger's two queue
 * inserts, A/B alternated in one run: `on conflict` (the trigger before migration 000090: a
 * speculative insertion per event), `not exists` (a plain insert behind an anti-join on the
 * primary key: measured, dropped), `plain` (000090) and `no queue row` (decision 0021: the
 * enqueue a claim by cursor would need; below). The statement is Wordloom's own (block update and plain outbox
 * INSERT in one statement, autocommit, as the API runs it) from `--clients` connections at
 * once; only the trigger function differs. Reports per statement the backends' CPU (/proc of
 * each connection's backend), the wall time and the WAL bytes and records.
 *
 *   node apps/wordloom/dist/bench/enqueueTriggerAb.js [--rounds 6] [--statements 2000] [--clients 4]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { createPool, migrationsDir } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { blockEventValues, withBlockEvent } from '../src/service/sql/blockEvent.js';
import { UPDATE_BLOCK } from '../src/service/sql/updateBlock.js';
import { fmt, median, procCpuMs, startBenchPostgres } from './env.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, statements: { type: 'string', default: '2000' }, clients: { type: 'string', default: '4' } } });
const ROUNDS = Number(values.rounds);
const STATEMENTS = Number(values.statements);
const CLIENTS = Number(values.clients);

/** Wordloom's block change, as the API runs it. */
const CHANGE = UPDATE_BLOCK;
const STATEMENT = withBlockEvent(CHANGE, 5);

/** Migration 000090's insert, as written there. */
const PLAIN_INSERT = `insert into loomtrace.outbox_queue (id, projection, run_at)
  select id, projection, run_at from new_events where state = 'pending';`;
const ANTI_INSERT = `insert into loomtrace.outbox_queue (id, projection, run_at)
  select n.id, n.projection, n.run_at from new_events n
   where n.state = 'pending'
     and not exists (select 1 from loomtrace.outbox_queue q where q.id = n.id);`;
const OLD_INSERT = `insert into loomtrace.outbox_queue (id, projection, run_at)
  select id, projection, run_at from new_events where state = 'pending'
  on conflict (id) do nothing;`;
const trigger = (insert: string) => `create or replace function loomtrace.outbox_enqueue_inserted() returns trigger language plpgsql as $$
begin
  ${insert}
  if current_setting('loomtrace.enqueue_notify', true) is distinct from 'off' then
    perform pg_notify('loomtrace_outbox', '');
  end if;
  return null;
end $$`;
const VARIANTS = { 'on conflict': trigger(OLD_INSERT), 'not exists': trigger(ANTI_INSERT), plain: trigger(PLAIN_INSERT), 'no queue row': trigger('') } as const;
/**
 * `no queue row` (decision 0021, measured, not adopted): the enqueue of a claim by cursor
 * (cursorClaimAb.ts): no queue row; each event stores its transaction id, indexed with its
 * projection. The column is added without a table rewrite and dropped again after the variant.
 */
const CURSOR_COLUMN = [
  'alter table loomtrace.outbox add column txid xid8',
  'alter table loomtrace.outbox alter column txid set default pg_current_xact_id()',
  'create index outbox_txid_idx on loomtrace.outbox (projection, txid, id)',
];
const CURSOR_COLUMN_DROP = ['drop index loomtrace.outbox_txid_idx', 'alter table loomtrace.outbox drop column txid'];
type Variant = keyof typeof VARIANTS;

const pgh = await startBenchPostgres((s) => console.log(s));
try {
  const url = await pgh.database('bench_enqueue_trigger_ab');
  const pool = createPool({ connectionString: url, max: CLIENTS + 1, notifyAfterCommit: true });
  await migrateAll(pool);
  const migration = readFileSync(path.join(migrationsDir(), '000090_enqueue_without_speculative_insert.sql'), 'utf8');
  if (!migration.includes(PLAIN_INSERT)) throw new Error('the enqueue trigger changed: update enqueueTriggerAb.ts');
  await pool.query('truncate wordloom.blocks, wordloom.books, wordloom.libraries, loomtrace.outbox, loomtrace.outbox_queue cascade');
  const lib = (await pool.query<{ id: string }>("insert into wordloom.libraries (name) values ('ab') returning id")).rows[0]!.id;
  const book = (await pool.query<{ id: string }>("insert into wordloom.books (library_id, title) values ($1, 'ab') returning id", [lib])).rows[0]!.id;
  const ids = (await pool.query<{ id: string }>("insert into wordloom.blocks (book_id, library_id, block_type, content) select $1, $2, 'text', 'block ' || g from generate_series(1, 1000) g returning id", [book, lib])).rows.map((r) => r.id);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => pool.connect()));
  const pids = await Promise.all(clients.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid));
  const event = { eventType: 'block.updated' as const, requestId: 'bench-request-0001', stored: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: null } };
  const out = new Map<Variant, { cpuUs: number[]; wallUs: number[]; wal: number[] }>(Object.keys(VARIANTS).map((v) => [v as Variant, { cpuUs: [], wallUs: [], wal: [] }]));
  const lsn = async () => (await pool.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l')).rows[0]!.l;
  let n = 0;
  for (let round = -1; round < ROUNDS; round++) {
    const all = Object.keys(VARIANTS) as Variant[];
    const order = all.map((_, k) => all[(k + round + 1) % all.length]!);
    for (const v of order) {
      await pool.query(VARIANTS[v]);
      if (v === 'no queue row') for (const q of CURSOR_COLUMN) await pool.query(q);
      const l0 = await lsn();
      const cpu0 = pids.reduce((a, p) => a + procCpuMs(p), 0);
      const t0 = performance.now();
      await Promise.all(
        clients.map(async (c, k) => {
          for (let i = k; i < STATEMENTS; i += CLIENTS) {
            const r = await c.query({ name: 'ab_patch', text: STATEMENT, values: [ids[(n + i) % ids.length], `edit ${i} quick brown fox`, null, null, null, ...blockEventValues(event)] });
            if (r.rowCount !== 1) throw new Error(`${v}: ${r.rowCount} rows`);
          }
        }),
      );
      n += STATEMENTS;
      const wallUs = ((performance.now() - t0) * 1000) / STATEMENTS;
      const cpuUs = ((pids.reduce((a, p) => a + procCpuMs(p), 0) - cpu0) * 1000) / STATEMENTS;
      const wal = Number((await pool.query<{ d: string }>('select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::text as d', [l0])).rows[0]!.d) / STATEMENTS;
      if (v === 'no queue row') for (const q of CURSOR_COLUMN_DROP) await pool.query(q);
      // Round −1 warms both (plans, caches) and is not counted.
      if (round >= 0) out.get(v)!.cpuUs.push(cpuUs), out.get(v)!.wallUs.push(wallUs), out.get(v)!.wal.push(wal);
      console.log(`  ${round < 0 ? 'warm-up' : `round ${round}`} ${v.padEnd(12)} backend CPU ${fmt(cpuUs, 1)} µs/statement, wall ${fmt(wallUs, 1)} µs/statement, WAL ${fmt(wal)} B/statement`);
    }
    await pool.query('truncate loomtrace.outbox, loomtrace.outbox_queue');
  }
  for (const [v, r] of out) console.log(`${v.padEnd(12)} median backend CPU ${fmt(median(r.cpuUs), 1)} µs/statement, wall ${fmt(median(r.wallUs), 1)} µs/statement, WAL ${fmt(median(r.wal))} B/statement (${CLIENTS} clients)`);
  const a = out.get('on conflict')!;
  for (const v of ['not exists', 'plain', 'no queue row'] as const) {
    const b = out.get(v)!;
    console.log(`${v} ÷ on conflict: CPU ${fmt(median(b.cpuUs) / median(a.cpuUs), 2)}, wall ${fmt(median(b.wallUs) / median(a.wallUs), 2)}`);
  }
  await pool.query(VARIANTS.plain);
  for (const c of clients) c.release();
  await pool.end();
} finally {
  await pgh.stop();
}
