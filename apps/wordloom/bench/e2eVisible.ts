/**
 * When each PATCH of the end-to-end run became visible in search.blocks. With
 * track_commit_timestamp on (the embedded server has it), "visible" is the commit time of the
 * worker's write that holds the PATCH's version (or a newer one): the moment a reader could see
 * it, read from the row (pg_xact_commit_timestamp(xmin)), so the poll can be rare (every 10 ms,
 * one query for all pending blocks) and adds no delay of its own. Without it, the time a poll
 * saw it (poll every ms). Versions of a block are about a second apart, so a version is rarely
 * overwritten before a poll sees it (it would then count the newer one's commit).
 */
import type pg from 'pg';
import { epochMs, sleep } from './env.js';
import type { Timed } from './e2eDiag.js';
import type { LoadRow } from './e2eLoad.js';

export async function commitTimestamps(db: pg.Client): Promise<boolean> {
  const { rows } = await db.query<{ on: boolean }>("select current_setting('track_commit_timestamp') = 'on' as on");
  return rows[0]?.on === true;
}

export class Visibility {
  readonly samples: number[] = [];
  /** due → PATCH response */
  readonly responses: number[] = [];
  /** PATCH response → visible: the outbox's part. */
  readonly afterResponse: number[] = [];
  readonly timed: Timed[] = [];
  readonly errorKinds: Record<string, number> = {};
  errors = 0;
  private readonly pending = new Map<number, { version: number; due: number; resp: number }[]>();
  private deadline = Infinity;

  constructor(
    private readonly db: pg.Client,
    private readonly ids: string[],
    private readonly byCommit: boolean,
  ) {}

  add(rows: LoadRow[]): void {
    for (const [b, version, due, sent, resp, err] of rows) {
      this.timed.push({ due, sent, resp });
      if (version < 0) {
        this.errors++;
        this.errorKinds[err] = (this.errorKinds[err] ?? 0) + 1;
        continue;
      }
      this.responses.push(resp - due);
      const list = this.pending.get(b) ?? [];
      list.push({ version, due, resp });
      this.pending.set(b, list);
    }
  }

  /** Stop once nothing is pending, or at `deadline` (epoch ms) whatever is. */
  finish(deadline: number): void {
    this.deadline = deadline;
  }

  async poll(everyMs: number): Promise<void> {
    const interval = this.byCommit ? everyMs : 1;
    const text = this.byCommit
      ? 'select block_id::text as id, version, extract(epoch from pg_xact_commit_timestamp(xmin))::float8 * 1000 as at from search.blocks where block_id = any($1::uuid[])'
      : 'select block_id::text as id, version, null::float8 as at from search.blocks where block_id = any($1::uuid[])';
    const index = new Map(this.ids.map((id, i) => [id, i]));
    while (this.deadline === Infinity || (this.pending.size > 0 && Date.now() < this.deadline)) {
      if (this.pending.size > 0) {
        const { rows } = await this.db.query<{ id: string; version: string; at: number | null }>({
          name: 'bench_visible',
          text,
          values: [[...this.pending.keys()].map((b) => this.ids[b])],
        });
        const now = epochMs();
        for (const r of rows) this.seen(index.get(r.id)!, Number(r.version), r.at ?? now);
      }
      await sleep(interval);
    }
  }

  private seen(b: number, v: number, at: number): void {
    const list = this.pending.get(b);
    if (!list) return;
    const keep = list.filter((p) => {
      if (p.version > v) return true;
      this.samples.push(at - p.due);
      this.afterResponse.push(Math.max(0, at - p.resp));
      return false;
    });
    if (keep.length) this.pending.set(b, keep);
    else this.pending.delete(b);
  }
}
