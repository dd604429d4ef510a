/**
 * Wordloom's span names and attribute keys: the outbox's (`@loomtrace/outbox/semconv`), plus
 * the application's own ids, which it puts on its API spans and hands to the outbox as event
 * attributes, and the rebuild command's.
 */
export * from '@loomtrace/outbox/semconv';
import { SpanNames as OutboxSpanNames } from '@loomtrace/outbox/semconv';

export const ATTR_LIBRARY_ID = 'loomtrace.library.id';
export const ATTR_BOOK_ID = 'loomtrace.book.id';
export const ATTR_BLOCK_ID = 'loomtrace.block.id';

/** A projection rebuild's progress (`loomtrace rebuild`). */
export const ATTR_REBUILD_READ = 'loomtrace.rebuild.read';
export const ATTR_REBUILD_WRITTEN = 'loomtrace.rebuild.written';
export const ATTR_REBUILD_STALE = 'loomtrace.rebuild.stale';
export const ATTR_REBUILD_TOTAL = 'loomtrace.rebuild.total';
export const ATTR_REBUILD_FAILED = 'loomtrace.rebuild.failed';

export const SpanNames = {
  ...OutboxSpanNames,
  rebuild: (projection: string) => `rebuild ${projection}`,
  rebuildBatch: (projection: string) => `rebuild ${projection} batch`,
};
