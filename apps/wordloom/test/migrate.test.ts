import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/db.js';
import { createPool } from '@loomtrace/outbox';
import { loadMigrations, migrate, migrationsCurrent } from '@loomtrace/outbox';

describe('migrations', () => {
  it('five processes starting at once on an empty database end with one schema and no error', async () => {
    const db = await freshDatabase('migrate', { template: false });
    try {
      assert.equal(await migrationsCurrent(db.pool), false);
      // Five separate pools = five separate sessions, as five processes would be.
      const pools = Array.from({ length: 5 }, () => createPool({ connectionString: db.url, max: 1 }));
      const results = await Promise.all(pools.map((p) => migrate(p)));
      await Promise.all(pools.map((p) => p.end()));
      const expected = (await loadMigrations()).map((m) => m.name);
      // Exactly one of them applied everything; the others found nothing to do.
      assert.deepEqual(results.map((r) => r.applied.length).sort((a, b) => a - b), [0, 0, 0, 0, expected.length]);
      const { rows } = await db.pool.query<{ name: string }>('select name from loomtrace.migrations order by id');
      assert.deepEqual(rows.map((r) => r.name), expected);
      assert.equal(await migrationsCurrent(db.pool), true);
      // Applying again is a no-op.
      assert.deepEqual((await migrate(db.pool)).applied, []);
    } finally {
      await db.drop();
    }
  });
});
