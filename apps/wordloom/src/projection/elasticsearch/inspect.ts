/**
 * What a cluster holds for one block, from a document GET (`_source: false`): the stored
 * external version, which is the block version the sink wrote. A 404 (`found: false`, or the
 * index not created yet) means the cluster holds nothing: after an acked delete that is the
 * removal (the cluster keeps its versioned tombstone internally; a GET cannot read it).
 */
import type { ProjectedState } from '@loomtrace/outbox';

export interface GetDocumentResponse {
  statusCode: number;
  body: { found?: boolean; _version?: number; error?: { type?: string } | string } | undefined;
}

/** Thrown when the cluster answers a GET with anything but a document or a 404. */
export class InspectError extends Error {
  override readonly name = 'InspectError';
  constructor(readonly statusCode: number, type: string) {
    super(`document GET ${statusCode} ${type}`.slice(0, 200));
  }
}

export function projectedFromGet(system: string, index: string, r: GetDocumentResponse): ProjectedState | null {
  if (r.statusCode === 404) return null;
  const body = r.body;
  if (r.statusCode >= 200 && r.statusCode < 300 && body) {
    if (body.found === false) return null;
    if (typeof body._version === 'number') return { version: body._version, deleted: false, at: null, eventId: null, where: `${system} index ${index}` };
  }
  const type = typeof body?.error === 'object' ? (body.error.type ?? 'error') : 'error';
  throw new InspectError(r.statusCode, type);
}
