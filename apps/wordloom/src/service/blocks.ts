import { SpanKind } from '@opentelemetry/api';
import { inTransaction, type Pool, type PoolClient } from '@loomtrace/outbox';
import { enqueue } from '@loomtrace/outbox';
import * as sc from '../semconv.js';
import { withSpan } from '@loomtrace/outbox';
import { blockPayload, SEARCH_PROJECTION, type BlockRow } from './model.js';
import { deleteBlock } from './sql/deleteBlock.js';
import { insertBlock } from './sql/insertBlock.js';
import { updateBlock } from './sql/updateBlock.js';

/**
 * Every change to a block commits in ONE transaction with its outbox event: the row (version
 * + 1) and `block.<verb>` for the search projection. A rollback leaves neither.
 */
async function changeBlock(
  pool: Pool,
  requestId: string,
  eventType: 'block.created' | 'block.updated' | 'block.deleted',
  change: (client: PoolClient) => Promise<BlockRow | undefined>,
): Promise<BlockRow | undefined> {
  return withSpan(sc.SpanNames.TRANSACTION, { kind: SpanKind.INTERNAL, attributes: { [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql' } }, (span) =>
    inTransaction(pool, async (client) => {
      const block = await change(client);
      if (!block) return undefined;
      span.setAttributes({ [sc.ATTR_BLOCK_ID]: block.id, [sc.ATTR_LIBRARY_ID]: block.library_id });
      await enqueue(client, {
        projection: SEARCH_PROJECTION,
        eventType,
        aggregateType: 'block',
        aggregateId: block.id,
        aggregateVersion: Number(block.version),
        attributes: { [sc.ATTR_BLOCK_ID]: block.id, [sc.ATTR_LIBRARY_ID]: block.library_id },
        requestId,
        payload: blockPayload(block),
      });
      return block;
    }),
  );
}

export function createBlock(pool: Pool, requestId: string, b: { bookId: string; blockType: string; content: string; position: number }) {
  return changeBlock(pool, requestId, 'block.created', (c) => insertBlock(c, b));
}

export function patchBlock(
  pool: Pool,
  requestId: string,
  id: string,
  patch: { content?: string | undefined; blockType?: string | undefined; position?: number | undefined; expectedVersion?: number | undefined },
) {
  return changeBlock(pool, requestId, 'block.updated', (c) => updateBlock(c, id, patch));
}

export function removeBlock(pool: Pool, requestId: string, id: string) {
  return changeBlock(pool, requestId, 'block.deleted', (c) => deleteBlock(c, id));
}
