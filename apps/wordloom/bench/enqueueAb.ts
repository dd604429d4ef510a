/**
 * The PATCH statement's Postgres side, A/B alternated in one run: the block update CTE calling
 * `loomtrace.enqueue(...)` (plpgsql: checks, then its INSERT, whose statement trigger queues the
 * event) against the same CTE with a plain INSERT into loomtrace.outbox (the checks left to the
 * caller's code and the table). Each statement is its own transaction (autocommit, as the API
 * runs it), from `--clients` connections at once. Reports, per statement, the backends' CPU
 * (/proc of each connection's backend: parse, plan, execute, commit) and the wall time.
 *
 *   node apps/wordloom/dist/bench/enqueueAb.js [--rounds 6] [--statements 2000] [--clients 4]
 */
import { parseArgs } from 'node:util';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { BLOCK_COLUMNS } from '../src/service/model.js';
import { blockEventValues, withBlockEvent } from '../src/service/sql/blockEvent.js';
import { UPDATE_BLOCK } from '../src/service/sql/updateBlock.js';
import { fmt, median, procCpuMs, startBenchPostgres } from './env.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, statements: { type: 'string', default: '2000' }, clients: { type: 'string', default: '4' } } });
const ROUNDS = Number(values.rounds);
const STATEMENTS = Number(values.statements);
const CLIENTS = Number(values.clients);

/** Wordloom's block change, as the API runs it. */
const CHANGE = UPDATE_BLOCK;
/** The statement as it was before decision 0015: the event through loomtrace.enqueue(...). */
function viaEnqueueFunction(change: string, n: number): string {
  const p = (k: number) => `$${n + k}`;
  return `with changed as (${change} returning ${BLOCK_COLUMNS})
          select ${BLOCK_COLUMNS},
                 loomtrace.enqueue(${p(1)}, ${p(2)}, 'block', id::text, version,
                   jsonb_build_object('book_id', book_id, 'library_id', library_id, 'block_type', block_type, 'content', content, 'position', position),
                   ${p(3)}, ${p(4)}, ${p(5)},
                   jsonb_build_object(${p(6)}::text, id::text, ${p(7)}::text, library_id::text))::text as event_id
            from changed`;
}
const VARIANTS = {
  'enqueue()': viaEnqueueFunction(CHANGE, 5),
  'plain insert': withBlockEvent(CHANGE, 5),
} as const;
type Variant = keyof typeof VARIANTS;

const pgh = await startBenchPostgres((s) => console.log(s));
try {
  const url = await pgh.database('bench_enqueue_ab');
  const pool = createPool({ connectionString: url, max: CLIENTS + 1, notifyAfterCommit: true });
  await migrateAll(pool);
  await pool.query('truncate wordloom.blocks, wordloom.books, wordloom.libraries, loomtrace.outbox, loomtrace.outbox_queue cascade');
  const lib = (await pool.query<{ id: string }>("insert into wordloom.libraries (name) values ('ab') returning id")).rows[0]!.id;
  const book = (await pool.query<{ id: string }>("insert into wordloom.books (library_id, title) values ($1, 'ab') returning id", [lib])).rows[0]!.id;
  const ids = (await pool.query<{ id: string }>("insert into wordloom.blocks (book_id, library_id, block_type, content) select $1, $2, 'text', 'block ' || g from generate_series(1, 1000) g returning id", [book, lib])).rows.map((r) => r.id);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => pool.connect()));
  const pids = await Promise.all(clients.map(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid));
  const event = { eventType: 'block.updated' as const, requestId: 'bench-request-0001', stored: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: null } };
  const out: Record<Variant, { cpuUs: number[]; wallUs: number[] }> = { 'enqueue()': { cpuUs: [], wallUs: [] }, 'plain insert': { cpuUs: [], wallUs: [] } };
  let n = 0;
  for (let round = -1; round < ROUNDS; round++) {
    const order: Variant[] = round % 2 === 0 ? ['enqueue()', 'plain insert'] : ['plain insert', 'enqueue()'];
    for (const v of order) {
      const cpu0 = pids.reduce((a, p) => a + procCpuMs(p), 0);
      const t0 = performance.now();
      await Promise.all(
        clients.map(async (c, k) => {
          for (let i = k; i < STATEMENTS; i += CLIENTS) {
            const r = await c.query({ name: `ab_${v === 'enqueue()' ? 'fn' : 'insert'}`, text: VARIANTS[v], values: [ids[(n + i) % ids.length], `edit ${i} quick brown fox`, null, null, null, ...blockEventValues(event)] });
            if (r.rowCount !== 1) throw new Error(`${v}: ${r.rowCount} rows`);
          }
        }),
      );
      n += STATEMENTS;
      const wallUs = ((performance.now() - t0) * 1000) / STATEMENTS;
      const cpuUs = ((pids.reduce((a, p) => a + procCpuMs(p), 0) - cpu0) * 1000) / STATEMENTS;
      // Round −1 warms both (plans, caches) and is not counted.
      if (round >= 0) out[v].cpuUs.push(cpuUs), out[v].wallUs.push(wallUs);
      console.log(`  ${round < 0 ? 'warm-up' : `round ${round}`} ${v.padEnd(12)} backend CPU ${fmt(cpuUs, 1)} µs/statement, wall ${fmt(wallUs, 1)} µs/statement`);
    }
    await pool.query('truncate loomtrace.outbox, loomtrace.outbox_queue');
  }
  for (const v of Object.keys(out) as Variant[]) console.log(`${v.padEnd(12)} median backend CPU ${fmt(median(out[v].cpuUs), 1)} µs/statement, wall ${fmt(median(out[v].wallUs), 1)} µs/statement (${CLIENTS} clients)`);
  console.log(`plain insert ÷ enqueue(): CPU ${fmt(median(out['plain insert'].cpuUs) / median(out['enqueue()'].cpuUs), 2)}, wall ${fmt(median(out['plain insert'].wallUs) / median(out['enqueue()'].wallUs), 2)}`);
  for (const c of clients) c.release();
  await pool.end();
} finally {
  await pgh.stop();
}
