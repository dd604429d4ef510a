import type { StoredContext } from '@loomtrace/outbox';
import * as sc from '../../semconv.js';
import { BLOCK_COLUMNS, SEARCH_PROJECTION, type BlockRow } from '../model.js';

/** The event a block change inserts with it, in the same statement. */
export interface BlockEvent {
  eventType: 'block.created' | 'block.updated' | 'block.deleted';
  requestId: string;
  /** The producer span's W3C context, stored in the event row. */
  stored: StoredContext;
}

export type ChangedBlock = BlockRow & { event_id: string };

/**
 * A statement that changes a block and adds its outbox event, in one statement (its own
 * transaction: both or neither): `change` is a data-modifying statement on wordloom.blocks
 * without RETURNING, using parameters $1..$`n`; the event's parameters follow. The event is what
 * `enqueue` inserts, by a plain INSERT into loomtrace.outbox (its statement trigger queues it):
 * the search projection's payload (blockPayload in model.ts: book, library, type, content,
 * position; never in spans) and the block and library ids as attributes. The checks
 * `loomtrace.enqueue(...)` (migration 000060) would make are this code's: the projection, the
 * event type and the attribute keys are constants, the trace context is written from the
 * producer span's (decision 3). The plain INSERT costs Postgres a quarter less CPU per statement
 * than the plpgsql call (bench/enqueueAb.ts; decision 0015). A change that matched no row adds
 * no event.
 */
export function withBlockEvent(change: string, n: number): string {
  const p = (k: number) => `$${n + k}`;
  return `with changed as (${change} returning ${BLOCK_COLUMNS}),
          event as (
            insert into loomtrace.outbox
              (projection, event_type, aggregate_type, aggregate_id, aggregate_version, request_id, attributes, traceparent, tracestate, payload)
            select ${p(1)}, ${p(2)}, 'block', id::text, version, ${p(5)},
                   jsonb_build_object(${p(6)}::text, id::text, ${p(7)}::text, library_id::text), ${p(3)}, ${p(4)},
                   jsonb_build_object('book_id', book_id, 'library_id', library_id, 'block_type', block_type, 'content', content, 'position', position)
              from changed
            returning id)
          select ${CHANGED_COLUMNS}, event.id::text as event_id
            from changed, event`;
}

const CHANGED_COLUMNS = BLOCK_COLUMNS.split(', ')
  .map((c) => `changed.${c}`)
  .join(', ');

/** The values of withBlockEvent's parameters, in order. */
export function blockEventValues(e: BlockEvent): unknown[] {
  return [SEARCH_PROJECTION, e.eventType, e.stored.traceparent, e.stored.tracestate, e.requestId, sc.ATTR_BLOCK_ID, sc.ATTR_LIBRARY_ID];
}
