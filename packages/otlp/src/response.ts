/**
 * The partial success in an export's response (ExportTraceServiceResponse.partial_success:
 * rejected_spans = 1, int64; error_message = 2, string), protobuf or JSON as the request was,
 * as the stock exporter reads it (its serializer's deserializeResponse, then
 * logging-response-handler.js). Logged without any span content: the count and the
 * receiver's message, cut short.
 */
import type { Logger, OtlpHttpProtocol } from './config.js';

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

function varint(b: Buffer, at: { p: number }): number {
  let n = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (at.p >= b.length) throw new Error('truncated varint');
    const byte = b[at.p++]!;
    n += (byte & 0x7f) * mul;
    if (byte < 0x80) return n;
    mul *= 128;
  }
  throw new Error('varint too long');
}

/** Calls `field` for each field of a protobuf message; skips what it does not read. */
function fields(b: Buffer, field: (no: number, wire: number, at: { p: number }) => boolean): void {
  const at = { p: 0 };
  while (at.p < b.length) {
    const key = varint(b, at);
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (field(no, wire, at)) continue;
    if (wire === 0) varint(b, at);
    else if (wire === 1) at.p += 8;
    else if (wire === 5) at.p += 4;
    else if (wire === 2) at.p += varint(b, at);
    else throw new Error(`wire type ${wire}`);
    if (at.p > b.length) throw new Error('truncated field');
  }
}

function fromProto(data: Buffer): PartialSuccess | undefined {
  let out: PartialSuccess | undefined;
  fields(data, (no, wire, at) => {
    if (no !== 1 || wire !== 2) return false;
    const len = varint(data, at);
    if (at.p + len > data.length) throw new Error('truncated partial_success');
    const msg = data.subarray(at.p, at.p + len);
    at.p += len;
    const ps: PartialSuccess = { rejectedSpans: 0, errorMessage: '' };
    fields(msg, (n, w, a) => {
      if (n === 1 && w === 0) ps.rejectedSpans = varint(msg, a);
      else if (n === 2 && w === 2) {
        const l = varint(msg, a);
        if (a.p + l > msg.length) throw new Error('truncated error_message');
        ps.errorMessage = msg.toString('utf8', a.p, a.p + l);
        a.p += l;
      } else return false;
      return true;
    });
    out = ps;
    return true;
  });
  return out;
}

function fromJson(data: Buffer): PartialSuccess | undefined {
  const text = data.toString('utf8').trim();
  if (text === '') return undefined;
  const msg = JSON.parse(text) as unknown;
  const ps = msg !== null && typeof msg === 'object' ? (msg as Record<string, unknown>)['partialSuccess'] : undefined;
  if (ps === null || typeof ps !== 'object') return undefined;
  const p = ps as Record<string, unknown>;
  const rejected = Number(p['rejectedSpans'] ?? 0);
  return { rejectedSpans: Number.isFinite(rejected) ? rejected : 0, errorMessage: typeof p['errorMessage'] === 'string' ? p['errorMessage'] : '' };
}

/** The partial success of a response body; undefined when there is none. Throws on a malformed body. */
export function partialSuccessOf(protocol: OtlpHttpProtocol, data: Buffer): PartialSuccess | undefined {
  return protocol === 'http/json' ? fromJson(data) : fromProto(data);
}

/** Logs a partial success (rejected spans or a warning message); a full success logs nothing. */
export function logResponse(log: Logger, protocol: OtlpHttpProtocol, data: Buffer, sent: number): number {
  let ps: PartialSuccess | undefined;
  try {
    ps = partialSuccessOf(protocol, data);
  } catch {
    log.warn({ spans: sent, response_bytes: data.length }, 'OTLP export succeeded but its response could not be decoded');
    return 0;
  }
  if (!ps || (ps.rejectedSpans === 0 && ps.errorMessage === '')) return 0;
  // The receiver's own words, without control characters and cut short (they are not ours to trust).
  const message = ps.errorMessage.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 256);
  log.warn({ spans: sent, rejected_spans: ps.rejectedSpans, error_message: message }, 'OTLP receiver accepted the export partially');
  return ps.rejectedSpans;
}
