/**
 * Wordloom's canary change for `loomtrace probe`: a PATCH of one canary block (in a library
 * named `loomtrace-canary`, made through the API on first use) through the real API, with a
 * trace context of its own so that the probe can find and check the change's trace.
 */
import { randomBytes } from 'node:crypto';
import type { CanaryChange, Queryable } from '@loomtrace/outbox';
import { selectCanaryBlock } from './service/sql/selectCanaryBlock.js';

export const CANARY_LIBRARY = 'loomtrace-canary';

async function call(apiUrl: string, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const r = await fetch(`${apiUrl}/api/v1${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`${method} ${path.replace(/[0-9a-f-]{36}/g, ':id')} answered ${r.status}`);
  return (await r.json()) as Record<string, unknown>;
}

export function blockCanary(apiUrl: string): (db: Queryable) => Promise<CanaryChange> {
  return async (db) => {
    let id = await selectCanaryBlock(db, CANARY_LIBRARY);
    if (!id) {
      const lib = await call(apiUrl, 'POST', '/libraries', { name: CANARY_LIBRARY });
      const book = await call(apiUrl, 'POST', '/books', { library_id: lib['id'], title: 'canary' });
      id = String((await call(apiUrl, 'POST', '/blocks', { book_id: book['id'], block_type: 'text', content: 'canary' }))['id']);
    }
    const traceId = randomBytes(16).toString('hex');
    const patched = await call(apiUrl, 'PATCH', `/blocks/${id}`, { content: `canary ${new Date().toISOString()}` }, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, 'x-request-id': `probe-${traceId.slice(0, 12)}` });
    return { aggregateId: id, version: Number(patched['version']), traceId };
  };
}
