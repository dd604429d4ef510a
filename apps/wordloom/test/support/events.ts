import { randomUUID } from 'node:crypto';
import type { EnqueueInput } from '@loomtrace/outbox';

/** The i-th test event: a block update for the search projection, its own aggregate, payload `{ i }`. */
export const blockEvent = (i: number): EnqueueInput => ({
  projection: 'search',
  eventType: 'block.updated',
  aggregateType: 'block',
  aggregateId: randomUUID(),
  aggregateVersion: i + 1,
  payload: { i },
});
