/**
 * A database migrated before the split into packages: every migration (outbox, Wordloom, search,
 * explorer) was recorded in one table, loomtrace.migrations. Each set now has its own table in its
 * own schema; a new one adopts its rows from the old table, so nothing is applied twice (the
 * explorer's and Wordloom's CREATE TABLEs would fail if they were) and the old applied_at stays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXPLORER_MIGRATIONS } from '@loomtrace/explorer';
import { OUTBOX_MIGRATIONS, loadMigrations, migrationsCurrent, type Migration } from '@loomtrace/outbox';
import { freshDatabase } from './support/db.js';
import { WORDLOOM_MIGRATIONS, allMigrationsCurrent, migrateAll } from '../src/db/migrate.js';

/** The files that existed before the split, applied then in id order by one runner. */
const BEFORE_SPLIT = [
  '000001_outbox.sql',
  '000002_wordloom.sql',
  '000003_search.sql',
  '000010_explorer.sql',
  '000020_outbox_upkeep.sql',
  '000030_replay.sql',
  '000031_lease_renewals.sql',
  '000040_queue_table.sql',
];
const THEN = '2026-01-02T03:04:05.000Z';

describe('migration sets after the split into packages', () => {
  it('no outbox migration takes an id that a pre-split database already lists in loomtrace.migrations for another set (it would be skipped there)', async () => {
    const taken = new Set<number>();
    for (const set of [EXPLORER_MIGRATIONS, WORDLOOM_MIGRATIONS]) {
      for (const m of await loadMigrations(set.dir)) if (BEFORE_SPLIT.includes(m.name)) taken.add(m.id);
    }
    assert.deepEqual([...taken].sort((a, b) => a - b), [2, 3, 10]);
    for (const m of await loadMigrations(OUTBOX_MIGRATIONS.dir)) assert.ok(!taken.has(m.id), `${m.name}: id ${m.id} is recorded as applied in pre-split databases`);
  });

  it('a database migrated by the old single runner: each set adopts its rows from loomtrace.migrations, applies only what is new, keeps its data', async () => {
    const db = await freshDatabase('migrate_adopt', { template: false });
    try {
      const sets = { loomtrace: OUTBOX_MIGRATIONS, explorer: EXPLORER_MIGRATIONS, wordloom: WORDLOOM_MIGRATIONS };
      const bySet = new Map<string, Migration[]>();
      for (const [schema, set] of Object.entries(sets)) bySet.set(schema, await loadMigrations(set.dir));
      const all = [...bySet.values()].flat();
      const old = BEFORE_SPLIT.map((name) => {
        const m = all.find((x) => x.name === name);
        assert.ok(m, `${name} still ships in one of the sets`);
        return m;
      }).sort((a, b) => a.id - b.id);

      // The old runner, as it was: one table, every file in id order.
      await db.pool.query('create schema loomtrace');
      await db.pool.query('create table loomtrace.migrations (id integer primary key, name text not null, applied_at timestamptz not null default now())');
      for (const m of old) {
        await db.pool.query(m.sql);
        await db.pool.query('insert into loomtrace.migrations (id, name, applied_at) values ($1, $2, $3)', [m.id, m.name, THEN]);
      }
      // A pending event of that time, with the library_id column 000050 replaces.
      await db.pool.query(
        `insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, library_id, payload)
         values ('search', 'block.updated', 'block', 'b-1', 3, '00000000-0000-0000-0000-00000000000a', '{}')`,
      );
      assert.equal(await allMigrationsCurrent(db.pool), false);

      const { applied } = await migrateAll(db.pool);
      const expected = all.filter((m) => !BEFORE_SPLIT.includes(m.name));
      assert.deepEqual([...applied].sort(), expected.map((m) => m.name).sort(), 'only the migrations written after the split are applied');
      assert.ok(applied.includes('000050_event_attributes.sql'));

      for (const [schema, migrations] of bySet) {
        const { rows } = await db.pool.query<{ name: string; applied_at: Date }>(`select name, applied_at from ${schema}.migrations order by id`);
        // The old table is the outbox's own now: the other sets' old rows stay in it, unused.
        const legacy = schema === 'loomtrace' ? BEFORE_SPLIT.filter((n) => !migrations.some((m) => m.name === n)) : [];
        assert.deepEqual(rows.map((r) => r.name), [...migrations.map((m) => m.name), ...legacy].sort(), `${schema}.migrations lists its own set`);
        for (const r of rows) {
          if (BEFORE_SPLIT.includes(r.name)) assert.equal(r.applied_at.toISOString(), THEN, `${schema}: ${r.name} keeps when it was applied`);
          else assert.notEqual(r.applied_at.toISOString(), THEN);
        }
      }
      for (const set of Object.values(sets)) assert.equal(await migrationsCurrent(db.pool, set), true);
      assert.equal(await allMigrationsCurrent(db.pool), true);

      // The event survived the upgrade, its library now a producer attribute.
      const { rows: events } = await db.pool.query<{ aggregate_id: string; state: string; attributes: unknown }>('select aggregate_id, state, attributes from loomtrace.outbox');
      assert.deepEqual(events, [{ aggregate_id: 'b-1', state: 'pending', attributes: { 'loomtrace.library.id': '00000000-0000-0000-0000-00000000000a' } }]);
      const { rows: queued } = await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox_queue');
      assert.equal(queued[0]!.n, 1, 'and it is still in the queue');

      // Again: nothing to do.
      assert.deepEqual((await migrateAll(db.pool)).applied, []);
    } finally {
      await db.drop();
    }
  });
});
