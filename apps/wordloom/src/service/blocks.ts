import { SpanKind } from '@opentelemetry/api';
import { sendInStatement, withSpan, type Pool, type StoredContext } from '@loomtrace/outbox';
import * as sc from '../semconv.js';
import { SEARCH_PROJECTION, type BlockRow } from './model.js';
import type { BlockEvent, ChangedBlock } from './sql/blockEvent.js';
import { deleteBlock } from './sql/deleteBlock.js';
import { insertBlock } from './sql/insertBlock.js';
import { updateBlock } from './sql/updateBlock.js';

/** Called after a change committed with its event: wakes the workers (OutboxWaker), when the pool defers NOTIFY. */
export type Wake = () => void;

/**
 * Every change to a block commits with its outbox event in ONE statement, its own transaction:
 * the row (version + 1) and `block.<verb>` for the search projection, or neither. One round trip
 * instead of BEGIN, UPDATE, INSERT, COMMIT (decision record 0012). The trace keeps its shape: the
 * `db transaction` span holds the statement's pg span and the `send search` PRODUCER span whose
 * context is stored in the row.
 */
async function changeBlock(
  pool: Pool,
  requestId: string,
  eventType: BlockEvent['eventType'],
  change: (stored: StoredContext) => Promise<ChangedBlock | undefined>,
  wake: Wake | undefined,
): Promise<BlockRow | undefined> {
  return withSpan(sc.SpanNames.TRANSACTION, { kind: SpanKind.INTERNAL, attributes: { [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql' } }, async (span) => {
    const block = await sendInStatement({ projection: SEARCH_PROJECTION, eventType, requestId }, change, (b) =>
      b
        ? {
            id: b.event_id,
            aggregateId: b.id,
            aggregateVersion: Number(b.version),
            attributes: { [sc.ATTR_BLOCK_ID]: b.id, [sc.ATTR_LIBRARY_ID]: b.library_id },
          }
        : undefined,
    );
    if (!block) return undefined;
    wake?.();
    if (span.isRecording()) span.setAttributes({ [sc.ATTR_BLOCK_ID]: block.id, [sc.ATTR_LIBRARY_ID]: block.library_id });
    const { event_id: _event, ...row } = block;
    return row;
  });
}

export function createBlock(pool: Pool, requestId: string, b: { bookId: string; blockType: string; content: string; position: number }, wake?: Wake) {
  return changeBlock(pool, requestId, 'block.created', (stored) => insertBlock(pool, b, { eventType: 'block.created', requestId, stored }), wake);
}

export function patchBlock(
  pool: Pool,
  requestId: string,
  id: string,
  patch: { content?: string | undefined; blockType?: string | undefined; position?: number | undefined; expectedVersion?: number | undefined },
  wake?: Wake,
) {
  return changeBlock(pool, requestId, 'block.updated', (stored) => updateBlock(pool, id, patch, { eventType: 'block.updated', requestId, stored }), wake);
}

export function removeBlock(pool: Pool, requestId: string, id: string, wake?: Wake) {
  return changeBlock(pool, requestId, 'block.deleted', (stored) => deleteBlock(pool, id, { eventType: 'block.deleted', requestId, stored }), wake);
}
