/**
 * `loomtrace rebuild`: rebuilds the search projection from the source of truth
 * (wordloom.blocks), all of it or one library, in batches, while the API and the worker keep
 * running.
 *
 *   loomtrace rebuild [--library <uuid>] [--batch-size N] [--json]
 *
 * Every batch goes through the projection's version-guarded upsert: a row changes only when
 * the block's version is newer than the indexed one, so a rebuild racing live edits never
 * regresses a version (whichever of the rebuild and the worker writes the newer version wins;
 * the other's write is stale, which is success). Deleted blocks are written as tombstones.
 * The whole run is one trace: a `rebuild search` span with a child span per batch.
 * With SEARCH_BACKEND=elasticsearch|opensearch the batches go to the cluster through the
 * worker's sink instead (external versioning is the guard there; retryable items are resent).
 * DATABASE_URL, or the embedded Postgres of `npm start`.
 */
import { startTelemetry, stopTelemetry } from '../telemetry.js';
import type { CliContext } from '@loomtrace/explorer/cli';
import { SpanNames, ATTR_BLOCK_ID, ATTR_LIBRARY_ID, ATTR_REBUILD_READ, ATTR_REBUILD_WRITTEN, ATTR_REBUILD_STALE, ATTR_REBUILD_TOTAL, ATTR_REBUILD_FAILED } from '../../semconv.js';

/** The rebuild's span names (low cardinality; ids only in attributes). */
export const REBUILD_SPAN = SpanNames.rebuild('search');
export const REBUILD_BATCH_SPAN = SpanNames.rebuildBatch('search');
export { ATTR_REBUILD_READ, ATTR_REBUILD_WRITTEN, ATTR_REBUILD_STALE, ATTR_REBUILD_TOTAL, ATTR_REBUILD_FAILED };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const USAGE = 'usage: loomtrace rebuild [--library <uuid>] [--batch-size N (default 1000)] [--json]';

export interface RebuildArgs {
  libraryId: string | undefined;
  batchSize: number;
  json: boolean;
}

export function parseRebuildArgs(argv: readonly string[]): RebuildArgs {
  const out: RebuildArgs = { libraryId: undefined, batchSize: 1_000, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--library') {
      const v = value();
      if (!UUID.test(v)) throw new Error(`--library must be a library id (uuid), got "${v}"`);
      out.libraryId = v.toLowerCase();
    } else if (a === '--batch-size') {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 1 || v > 50_000) throw new Error('--batch-size must be an integer from 1 to 50000');
      out.batchSize = v;
    } else if (a === '--json') {
      out.json = true;
    } else {
      throw new Error(`unknown option ${a}`);
    }
  }
  return out;
}

export interface RebuildProgress {
  total: number;
  read: number;
  written: number;
  stale: number;
  /** Blocks the projection refused (cluster backends: mapping errors, retries exhausted). */
  failed: number;
  batches: number;
}

type BlockDoc = import('../../projection/postgres/upsertBlocks.js').BlockDoc;
/** Writes one batch of documents to a projection, version-guarded; says what happened. */
export type BatchWriter = (docs: BlockDoc[]) => Promise<{ written: number; stale: number; failed: number }>;

/** The default writer: the Postgres projection's version-guarded upsert. */
export async function postgresWriter(pool: import('@loomtrace/outbox').Pool): Promise<BatchWriter> {
  const { upsertBlocks } = await import('../../projection/postgres/upsertBlocks.js');
  return async (docs) => {
    const written = await upsertBlocks(pool, docs);
    return { written: written.size, stale: docs.length - written.size, failed: 0 };
  };
}

/**
 * A writer through any Sink (the Elasticsearch/OpenSearch one): each block becomes an event at
 * its current version; retryable items are sent again (at most 5 tries, with backoff and
 * Retry-After), failures are counted.
 */
export async function sinkWriter(sink: import('@loomtrace/outbox').Sink, opts: { tries?: number; baseDelayMs?: number } = {}): Promise<BatchWriter> {
  const { classifyError } = await import('@loomtrace/outbox');
  const tries = opts.tries ?? 5;
  const base = opts.baseDelayMs ?? 200;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return async (docs) => {
    let pending: import('@loomtrace/outbox').OutboxEvent[] = docs.map((d) => ({
      id: '0', projection: 'search', eventType: d.deleted ? 'block.deleted' : 'block.updated', aggregateType: 'block',
      aggregateId: d.blockId, aggregateVersion: d.version, requestId: null, attributes: { [ATTR_BLOCK_ID]: d.blockId, [ATTR_LIBRARY_ID]: d.libraryId }, traceparent: null, tracestate: null,
      payload: { book_id: d.bookId, library_id: d.libraryId, block_type: d.blockType, content: d.content },
      attempt: 1, previousOwner: null, previousToken: null, reclaimed: false, previousLeaseMs: null, lastReason: null,
      lastDelayMs: null, lastAttemptSpan: null, readyAtMs: Date.now(), readySource: 'insert_time', claimedAtMs: Date.now(),
    }));
    const r = { written: 0, stale: 0, failed: 0 };
    for (let attempt = 1; pending.length > 0 && attempt <= tries; attempt++) {
      let waitMs = base * 2 ** (attempt - 1);
      let outcomes;
      try {
        outcomes = await sink.write(pending, AbortSignal.timeout(120_000));
      } catch (err) {
        const c = classifyError(err);
        if (c.kind !== 'retry' || attempt === tries) throw err;
        await sleep(Math.max(waitMs, c.retryAfterMs ?? 0));
        continue;
      }
      const again: typeof pending = [];
      outcomes.forEach((o, i) => {
        if (o.kind === 'written') r.written++;
        else if (o.kind === 'stale') r.stale++;
        else if (o.kind === 'fail') r.failed++;
        else {
          again.push(pending[i]!);
          waitMs = Math.max(waitMs, o.retryAfterMs ?? 0);
        }
      });
      pending = again;
      if (pending.length > 0 && attempt < tries) await sleep(waitMs);
    }
    r.failed += pending.length;
    return r;
  };
}

interface SourceRow {
  id: string;
  library_id: string;
  book_id: string;
  version: string;
  deleted: boolean;
  block_type: string;
  content: string;
}

/**
 * The rebuild itself, for any pool (the command and tests call it). `onProgress` runs after
 * every batch.
 */
export async function rebuildSearch(
  pool: import('@loomtrace/outbox').Pool,
  args: { libraryId?: string | undefined; batchSize: number; onProgress?: (p: RebuildProgress) => void; writer?: BatchWriter },
): Promise<RebuildProgress> {
  const { SpanKind } = await import('@opentelemetry/api');
  const { withSpan } = await import('@loomtrace/outbox');
  const sc = await import('../../semconv.js');
  const write = args.writer ?? (await postgresWriter(pool));
  const lib = args.libraryId ?? null;
  return withSpan(
    REBUILD_SPAN,
    {
      kind: SpanKind.INTERNAL,
      attributes: { [sc.ATTR_PROJECTION]: 'search', [sc.ATTR_BATCH_SIZE]: args.batchSize, [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql', ...(lib ? { [sc.ATTR_LIBRARY_ID]: lib } : {}) },
    },
    async (span) => {
      const { rows: count } = await pool.query<{ n: number }>({
        name: 'rebuild_count_blocks',
        text: 'select count(*)::int as n from wordloom.blocks where ($1::uuid is null or library_id = $1)',
        values: [lib],
      });
      const p: RebuildProgress = { total: count[0]?.n ?? 0, read: 0, written: 0, stale: 0, failed: 0, batches: 0 };
      span.setAttribute(ATTR_REBUILD_TOTAL, p.total);
      // Keyset pagination by id: each batch is one short statement; edits between batches are fine.
      let after = '00000000-0000-0000-0000-000000000000';
      for (;;) {
        const batch = await withSpan(REBUILD_BATCH_SPAN, { kind: SpanKind.INTERNAL }, async (bs) => {
          const { rows } = await pool.query<SourceRow>({
            name: 'rebuild_select_blocks',
            text: `select id, library_id, book_id, version::text, deleted_at is not null as deleted, block_type, content
                     from wordloom.blocks
                    where id > $1 and ($2::uuid is null or library_id = $2)
                    order by id
                    limit $3`,
            values: [after, lib, args.batchSize],
          });
          if (rows.length === 0) return rows;
          const w = await write(
            rows.map((r) => ({
              blockId: r.id,
              libraryId: r.library_id,
              bookId: r.book_id,
              version: Number(r.version),
              deleted: r.deleted,
              blockType: r.deleted ? null : r.block_type,
              content: r.deleted ? null : r.content,
              // Not from an outbox event: the index row records no event id.
              eventId: null,
            })),
          );
          bs.setAttributes({ [ATTR_REBUILD_READ]: rows.length, [ATTR_REBUILD_WRITTEN]: w.written, [ATTR_REBUILD_STALE]: w.stale, [ATTR_REBUILD_FAILED]: w.failed });
          p.read += rows.length;
          p.written += w.written;
          p.stale += w.stale;
          p.failed += w.failed;
          p.batches++;
          return rows;
        });
        if (batch.length === 0) break;
        after = batch[batch.length - 1]!.id;
        args.onProgress?.({ ...p });
        if (batch.length < args.batchSize) break;
      }
      span.setAttributes({ [ATTR_REBUILD_READ]: p.read, [ATTR_REBUILD_WRITTEN]: p.written, [ATTR_REBUILD_STALE]: p.stale, [ATTR_REBUILD_FAILED]: p.failed });
      return p;
    },
  );
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  let args: RebuildArgs;
  try {
    args = parseRebuildArgs(argv);
  } catch (err) {
    process.stderr.write(`loomtrace rebuild: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  // Before anything loads pg, so its queries are traced inside the rebuild's spans.
  startTelemetry('loomtrace-rebuild');
  const { createPool } = await import('@loomtrace/outbox');
  const { trace } = await import('@opentelemetry/api');
  const { loadOpsConfig } = await import('../metrics.js');
  const ops = loadOpsConfig();
  const url = ctx.databaseUrl;
  const pool = createPool({ connectionString: url, max: 2, applicationName: 'loomtrace-rebuild' });
  const started = performance.now();
  let traceId: string | undefined;
  let sink: import('@loomtrace/outbox').Sink | undefined;
  try {
    let writer: BatchWriter | undefined;
    if (ops.search.backend !== 'postgres') {
      const { createSearchSink } = await import('../../projection/elasticsearch/select.js');
      sink = await createSearchSink(pool, ops.search);
      writer = await sinkWriter(sink);
      process.stdout.write(`rebuild: writing to ${ops.search.backend} index ${ops.search.index}\n`);
    }
    const p = await rebuildSearch(pool, {
      libraryId: args.libraryId,
      batchSize: args.batchSize,
      ...(writer ? { writer } : {}),
      onProgress: (q) => {
        traceId ??= trace.getActiveSpan()?.spanContext().traceId;
        const pct = q.total ? Math.min(100, Math.round((q.read / q.total) * 100)) : 100;
        if (args.json) process.stdout.write(`${JSON.stringify({ progress: q })}\n`);
        else process.stdout.write(`rebuild: ${q.read}/${q.total} blocks (${pct}%), ${q.written} written, ${q.stale} already current${q.failed ? `, ${q.failed} FAILED` : ''}\n`);
      },
    });
    const ms = Math.round(performance.now() - started);
    if (args.json) process.stdout.write(`${JSON.stringify({ done: p, ms, trace_id: traceId ?? null })}\n`);
    else process.stdout.write(`rebuild done: ${p.read} blocks in ${p.batches} batches, ${p.written} written, ${p.stale} already current, ${p.failed} failed, ${ms} ms${traceId && traceId !== '0'.repeat(32) ? `; trace ${traceId}` : ''}\n`);
    return p.failed > 0 ? 1 : 0;
  } catch (err) {
    process.stderr.write(`loomtrace rebuild failed: ${(err as Error).message.split('\n', 1)[0]}\n`);
    return 1;
  } finally {
    await sink?.close?.();
    await pool.end();
    await stopTelemetry();
  }
}
