import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '@loomtrace/outbox';

export interface TestDatabase {
  url: string;
  pool: Pool;
  /** Drops the database (closing the pool first). */
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env['LOOMTRACE_TEST_ADMIN_URL'];
  if (!url) throw new Error('run tests with `npm test` (it starts Postgres), or set LOOMTRACE_TEST_ADMIN_URL and LOOMTRACE_TEST_TEMPLATE');
  return url;
}

/** A fresh, migrated database cloned from the run's template: a real Postgres, isolated per test. */
export async function freshDatabase(label: string, opts: { template?: boolean; max?: number } = {}): Promise<TestDatabase> {
  const name = `t_${label.replace(/\W+/g, '_').slice(0, 30)}_${randomBytes(3).toString('hex')}`.toLowerCase();
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    const template = opts.template === false ? '' : ` template ${process.env['LOOMTRACE_TEST_TEMPLATE'] ?? 'loomtrace_template'}`;
    await admin.query(`create database ${name}${template}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool({ connectionString: url, max: opts.max ?? 10, applicationName: 'loomtrace-test' });
  return {
    url,
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      const a = new pg.Client({ connectionString: adminUrl() });
      await a.connect();
      try {
        await a.query(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}
