/**
 * The protobuf wire primitives the OTLP span writer builds on (proto.ts has the message layout):
 * tags, varints, hex ids into bytes, and a growable buffer that writes length-delimited fields.
 */
import type { AttrTarget } from './common.js';

/** A span writer's buffer: spans are written into it back to back, and exported as slices of it. */
export const CHUNK = 256 * 1024;

/**
 * Span writers' buffers whose spans are all done (SpanChunk), for the next buffer a writer needs:
 * at most FREE_CHUNKS of them (2 MiB) are kept, the others left to the GC.
 */
const FREE_CHUNKS = 8;
const freeChunks: Buffer[] = [];
/** How many CHUNK-sized writer buffers were made new and how many reused, since the start (tests, benches). */
export const chunkStats = { allocated: 0, reused: 0 };

/** A CHUNK-sized buffer: a released one if there is one, else a new one. */
export function acquireChunk(): Buffer {
  const b = freeChunks.pop();
  if (b !== undefined) {
    chunkStats.reused++;
    return b;
  }
  chunkStats.allocated++;
  return Buffer.allocUnsafe(CHUNK);
}

/** Hands a writer's buffer back for reuse (only CHUNK-sized ones are kept). */
export function releaseChunk(b: Buffer): void {
  if (b.length === CHUNK && b.byteOffset === 0 && freeChunks.length < FREE_CHUNKS) freeChunks.push(b);
}

// Tags: (field << 3) | wire type. 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
export const T_LEN1 = 0x0a; // field 1, LEN
export const T_LEN2 = 0x12; // field 2, LEN
export const T_LEN3 = 0x1a; // field 3, LEN
export const T_LEN4 = 0x22; // field 4, LEN
export const T_LEN5 = 0x2a; // field 5, LEN
const T_LEN6 = 0x32;
const T_LEN7 = 0x3a;
export const ATTR_TAG: Record<AttrTarget, number> = { span: 0x4a /* 9 */, event: T_LEN3, link: T_LEN4 };

const HEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[97 + i] = 10 + i;
    t[65 + i] = 10 + i;
  }
  return t;
})();

/** KeyValue's start for a key: tag 1, the key's bytes, tag 2 (the value's length follows). */
export const keyPrefixes = new Map<string, Uint8Array>();
export function keyPrefix(key: string): Uint8Array {
  const w = new ProtoBuffer(64 + 3 * key.length);
  w.byte(T_LEN1);
  w.str(key);
  w.byte(T_LEN2);
  return w.copy();
}

/** A 32-bit word, big-endian; returns the new position. */
export function putWord(b: Buffer, p: number, w: number): number {
  b[p] = w >>> 24;
  b[p + 1] = (w >>> 16) & 0xff;
  b[p + 2] = (w >>> 8) & 0xff;
  b[p + 3] = w & 0xff;
  return p + 4;
}

/** Length byte and the bytes of a hex id; returns the new position. */
export function putHex(b: Buffer, p: number, hex: string): number {
  const n = hex.length >> 1;
  b[p++] = n;
  for (let i = 0; i < n; i++) b[p++] = (HEX[hex.charCodeAt(2 * i)]! << 4) | HEX[hex.charCodeAt(2 * i + 1)]!;
  return p;
}

export function varintSize(n: number): number {
  let k = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    k++;
  }
  return k;
}

/** Writes a non-negative integer (below 2^53) as a varint at `p`; returns the position after it. */
function putVarint(b: Buffer, p: number, v: number): number {
  while (v >= 0x80) {
    b[p++] = (v & 0x7f) | 0x80;
    v = v > 0x7fffffff ? Math.floor(v / 128) : v >>> 7;
  }
  b[p++] = v;
  return p;
}

/** A growable buffer with the protobuf primitives; nested messages get their length when they end. */
export class ProtoBuffer {
  buf: Buffer;
  pos = 0;
  /** Where the current top-level item started: what moves when the buffer grows. */
  protected itemStart = 0;
  /** Open length-delimited messages: the position of each one's (1-byte, reserved) length. */
  private readonly open: number[] = [];

  constructor(size = CHUNK) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.grow(n);
  }

  /** Hook for the span writer: the finished items of the current buffer, before it is replaced. */
  protected retire(): void {}

  /** Hook for the span writer: a new buffer of `size` bytes (CHUNK unless an item is larger). */
  protected allocate(size: number): Buffer {
    return Buffer.allocUnsafe(size);
  }

  /** Hook for the span writer: the buffer it replaced, once the item in progress was copied out. */
  protected replaced(_old: Buffer): void {}

  private grow(n: number): void {
    this.retire();
    const used = this.pos - this.itemStart;
    const next = this.allocate(Math.max(CHUNK, (used + n) * 2));
    const old = this.buf;
    old.copy(next, 0, this.itemStart, this.pos);
    const delta = this.itemStart;
    for (let i = 0; i < this.open.length; i++) this.open[i]! -= delta;
    // Items before itemStart stay where they are: their slices keep the old buffer alive.
    this.buf = next;
    this.pos = used;
    this.itemStart = 0;
    this.replaced(old);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    this.ensure(10);
    if (n >= 0 && n < 0x80000000) {
      while (n >= 0x80) {
        this.buf[this.pos++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      this.buf[this.pos++] = n;
      return;
    }
    // Large or negative: int64 two's complement, as every protobuf writer does.
    let v = BigInt.asUintN(64, BigInt(n));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  fixed32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n >>> 0, this.pos);
    this.pos += 4;
  }

  double(n: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }

  /** Epoch ms as fixed64 nanoseconds, exactly as the SDK's writeHrTimeAsFixed64 computes them. */
  timeMs(ms: number): void {
    // hrParts(ms), inline (no array): the SDK's millisToHrTime.
    this.timeHr(Math.trunc(ms / 1000), Math.round((ms % 1000) * 1e6));
  }

  /** An SDK HrTime ([seconds, nanoseconds]) as fixed64 nanoseconds: the SDK's writeHrTimeAsFixed64. */
  timeHr(seconds: number, nanos: number): void {
    const lo16 = seconds & 0xffff;
    const hi = (seconds / 0x10000) >>> 0;
    const fromLo = lo16 * 1e9;
    const fromHi = hi * 1e9;
    const lowWithCarry = (fromLo >>> 0) + (((fromHi & 0xffff) * 0x10000) >>> 0) + nanos;
    const low = lowWithCarry >>> 0;
    const carry = Math.floor(lowWithCarry / 0x100000000);
    const high = (Math.floor(fromLo / 0x100000000) + ((fromHi / 0x10000) >>> 0) + carry) >>> 0;
    this.ensure(8);
    const b = this.buf;
    const p = this.pos;
    b[p] = low & 0xff;
    b[p + 1] = (low >>> 8) & 0xff;
    b[p + 2] = (low >>> 16) & 0xff;
    b[p + 3] = low >>> 24;
    b[p + 4] = high & 0xff;
    b[p + 5] = (high >>> 8) & 0xff;
    b[p + 6] = (high >>> 16) & 0xff;
    b[p + 7] = high >>> 24;
    this.pos = p + 8;
  }

  /** A string field's length and UTF-8 bytes. */
  str(s: string): void {
    const n = s.length;
    if (n < 128) {
      this.ensure(1 + 3 * n);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    const len = Buffer.byteLength(s);
    this.varint(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos);
  }

  /** A bytes field holding the binary form of a hex id (16 or 8 bytes). */
  hexId(hex: string): void {
    this.ensure(1 + (hex.length >> 1));
    this.pos = putHex(this.buf, this.pos, hex);
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Starts a length-delimited message (its tag already written). */
  begin(): void {
    this.ensure(1);
    this.open.push(this.pos);
    this.pos += 1;
  }

  /** Ends the innermost message: writes its length, moving the content when it needs more than one byte. */
  end(): void {
    const start = this.open.pop()!;
    const len = this.pos - start - 1;
    if (len < 0x80) this.buf[start] = len;
    else this.patchLength(start, 1, len);
  }

  /**
   * Writes `len` as a varint into the `reserved` bytes at `start` (inside the item being
   * written), moving what follows them when the varint needs another number of bytes.
   */
  protected patchLength(start: number, reserved: number, len: number): void {
    const k = varintSize(len);
    if (k !== reserved) {
      const rel = start - this.itemStart;
      if (k > reserved) this.ensure(k - reserved);
      start = this.itemStart + rel;
      this.buf.copyWithin(start + k, start + reserved, this.pos);
      this.pos += k - reserved;
    }
    putVarint(this.buf, start, len);
  }

  /** One KeyValue (its tag already written), as otlp-transformer's writeKeyValue. */
  keyValue(key: string, value: unknown): void {
    this.begin();
    this.byte(T_LEN1);
    this.str(key);
    this.byte(T_LEN2);
    this.begin();
    this.anyValue(value);
    this.end();
    this.end();
  }

  /** AnyValue's content, as otlp-transformer's writeAnyValue (integers within int64 as int, else double). */
  anyValue(value: unknown): void {
    switch (typeof value) {
      case 'string':
        this.byte(T_LEN1);
        this.str(value);
        return;
      case 'boolean':
        this.byte(0x10);
        this.byte(value ? 1 : 0);
        return;
      case 'number':
        if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
          this.byte(0x18);
          this.varint(value);
        } else {
          this.byte(0x21);
          this.double(value);
        }
        return;
      default:
    }
    if (value instanceof Uint8Array) {
      this.byte(T_LEN7);
      this.varint(value.length);
      this.raw(value);
    } else if (Array.isArray(value)) {
      this.byte(T_LEN5);
      this.begin();
      for (const item of value as unknown[]) {
        this.byte(T_LEN1);
        this.begin();
        this.anyValue(item);
        this.end();
      }
      this.end();
    } else if (typeof value === 'object' && value !== null) {
      this.byte(T_LEN6);
      this.begin();
      for (const k in value) {
        if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
        this.byte(T_LEN1);
        this.keyValue(k, (value as Record<string, unknown>)[k]);
      }
      this.end();
    }
  }

  /** Repeated KeyValue under the given tag, for every own key (the SDK's writeAttributes). */
  attributes(tag: number, attrs: Readonly<Record<string, unknown>>): void {
    for (const key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      this.byte(tag);
      this.keyValue(key, attrs[key]);
    }
  }

  /** The bytes written so far, copied out (for encode-once fragments). */
  copy(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** Encodes a list of KeyValue once, to be appended as bytes. */
export function protoAttributes(attrs: Readonly<Record<string, unknown>>, tag: number): Buffer {
  const w = new ProtoBuffer(256);
  w.attributes(tag, attrs);
  return w.copy();
}

