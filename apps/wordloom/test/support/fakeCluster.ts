/**
 * A local HTTP server that answers like an Elasticsearch/OpenSearch node, with state: an index
 * created by PUT, `_bulk` with external versions (a 409 `version_conflict_engine_exception`
 * item when the stored version is higher or equal, as a cluster does), document GETs (200
 * `found: true` with `_version`, 404 `found: false`, 404 `index_not_found_exception`) and a
 * small `_search` (match on `content`, `library_id` term filter, highlight with the request's
 * tags). Response bodies follow recorded cluster responses. No cluster can be installed here:
 * the official clients are the real thing under test, the cluster is not.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredDoc {
  version: number;
  source: Record<string, unknown> | null;
}

export interface FakeCluster {
  url: string;
  /** Documents by index and id; a deleted document is gone (its tombstone kept in `tombstones`). */
  docs: Map<string, StoredDoc>;
  tombstones: Map<string, number>;
  requests: { method: string; path: string }[];
  /** When set, document GETs answer this status (a cluster in trouble). */
  failGets: number | undefined;
  indexExists: boolean;
  /** Bulk items answered 409 (version conflict). */
  conflicts: number;
  close(): Promise<void>;
}

const notFoundIndex = (index: string) => ({
  error: {
    root_cause: [{ type: 'index_not_found_exception', reason: `no such index [${index}]`, 'resource.type': 'index_expression', 'resource.id': index, index_uuid: '_na_', index }],
    type: 'index_not_found_exception',
    reason: `no such index [${index}]`,
    'resource.type': 'index_expression',
    'resource.id': index,
    index_uuid: '_na_',
    index,
  },
  status: 404,
});

export async function startFakeCluster(product: 'elasticsearch' | 'opensearch'): Promise<FakeCluster> {
  const state: FakeCluster = { url: '', docs: new Map(), tombstones: new Map(), requests: [], failGets: undefined, indexExists: false, conflicts: 0, close: async () => undefined };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://x');
      const path = decodeURIComponent(url.pathname);
      state.requests.push({ method: req.method ?? '', path });
      const send = (status: number, b: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', ...(product === 'elasticsearch' ? { 'x-elastic-product': 'Elasticsearch' } : {}) });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(b));
      };
      if (path === '/') return send(200, { name: 'node-1', cluster_name: 'fake', version: { number: product === 'elasticsearch' ? '9.1.0' : '3.1.0', distribution: product === 'opensearch' ? 'opensearch' : undefined }, tagline: 'You Know, for Search' });
      if (path === '/_bulk') return send(200, bulk(state, body));
      const doc = /^\/([^/]+)\/_doc\/([^/]+)$/.exec(path);
      if (doc && req.method === 'GET') {
        const [, index, id] = doc as unknown as [string, string, string];
        if (state.failGets) return send(state.failGets, { error: { type: 'cluster_block_exception', reason: 'blocked' }, status: state.failGets });
        if (!state.indexExists) return send(404, notFoundIndex(index));
        const d = state.docs.get(id);
        if (!d) return send(404, { _index: index, _id: id, found: false });
        const base = { _index: index, _id: id, _version: d.version, _seq_no: d.version - 1, _primary_term: 1, found: true };
        return send(200, url.searchParams.get('_source') === 'false' ? base : { ...base, _source: d.source });
      }
      const search = /^\/([^/]+)\/_search$/.exec(path);
      if (search) return send(200, searchDocs(state, search[1]!, JSON.parse(body || '{}') as SearchBody));
      if (req.method === 'HEAD') return send(state.indexExists ? 200 : 404, {});
      if (req.method === 'PUT') {
        state.indexExists = true;
        return send(200, { acknowledged: true, shards_acknowledged: true, index: path.slice(1) });
      }
      send(404, { error: { type: 'not_found' }, status: 404 });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise<void>((r) => server.close(() => r()));
  return state;
}

function bulk(state: FakeCluster, body: string) {
  const lines = body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
  const items: Record<string, unknown>[] = [];
  state.indexExists = true;
  for (let i = 0; i < lines.length; i++) {
    const action = Object.keys(lines[i]!)[0]!;
    const meta = lines[i]![action]!;
    const source = action === 'index' ? (lines[++i] as Record<string, unknown>) : null;
    const id = String(meta['_id']);
    const version = Number(meta['version']);
    const current = state.docs.get(id)?.version ?? state.tombstones.get(id);
    const base = { _index: meta['_index'], _id: id };
    if (current !== undefined && current >= version) {
      state.conflicts++;
      items.push({ [action]: { ...base, status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, current version [${current}] is higher or equal to the one provided [${version}]`, index_uuid: 'Xx1', shard: '0', index: meta['_index'] } } });
      continue;
    }
    if (action === 'delete') {
      const existed = state.docs.delete(id);
      state.tombstones.set(id, version);
      items.push({ delete: { ...base, _version: version, result: existed ? 'deleted' : 'not_found', _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: 1, _primary_term: 1, status: existed ? 200 : 404 } });
    } else {
      const created = !state.docs.has(id);
      state.docs.set(id, { version, source });
      items.push({ index: { ...base, _version: version, result: created ? 'created' : 'updated', _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: 1, _primary_term: 1, status: created ? 201 : 200 } });
    }
  }
  return { took: 2, errors: items.some((it) => (Object.values(it)[0] as { status: number }).status >= 300 && (Object.values(it)[0] as { status: number }).status !== 404), items };
}

interface SearchBody {
  size?: number;
  query?: { bool?: { must?: { match?: { content?: { query?: string } } }[]; filter?: { term?: Record<string, string> }[] } };
  highlight?: { pre_tags?: string[]; post_tags?: string[] };
}

function searchDocs(state: FakeCluster, index: string, body: SearchBody) {
  const q = body.query?.bool?.must?.[0]?.match?.content?.query ?? '';
  const words = q.toLowerCase().split(/\W+/).filter(Boolean);
  const filters = body.query?.bool?.filter ?? [];
  const pre = body.highlight?.pre_tags?.[0] ?? '<em>';
  const post = body.highlight?.post_tags?.[0] ?? '</em>';
  const hits = [];
  for (const [id, d] of state.docs) {
    const src = d.source ?? {};
    const content = String(src['content'] ?? '');
    if (!filters.every((f) => Object.entries(f.term ?? {}).every(([k, v]) => src[k] === v))) continue;
    const matched = content.split(/(\W+)/).map((t) => (words.includes(t.toLowerCase()) ? `${pre}${t}${post}` : t));
    const score = matched.filter((t) => t.startsWith(pre)).length;
    if (score === 0) continue;
    hits.push({ _index: index, _id: id, _score: score, _source: src, highlight: { content: [matched.join('')] } });
  }
  hits.sort((a, b) => b._score - a._score || (a._id < b._id ? -1 : 1));
  const page = hits.slice(0, body.size ?? 10);
  return { took: 1, timed_out: false, _shards: { total: 1, successful: 1, skipped: 0, failed: 0 }, hits: { total: { value: hits.length, relation: 'eq' }, max_score: page[0]?._score ?? null, hits: page } };
}
