import type { IncomingMessage } from 'node:http';
import { createGunzip, createInflate } from 'node:zlib';

/** A request the receiver refuses, with the HTTP status that says why. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a request body with two caps: bytes as sent (`maxBody`) and bytes after
 * decompression (`maxDecompressed`), counted while streaming, so neither a large body nor a
 * gzip bomb is ever held beyond its cap. Rejects with 413 when a cap is passed, 400 for a
 * broken gzip stream.
 */
export function readBody(req: IncomingMessage, encoding: 'identity' | 'gzip' | 'deflate', maxBody: number, maxDecompressed: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let sent = 0;
    let kept = 0;
    let done = false;
    const inflater = encoding === 'gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : undefined;
    const fail = (err: HttpError) => {
      if (done) return;
      done = true;
      chunks.length = 0;
      req.unpipe();
      req.removeListener('data', onData);
      if (inflater) {
        inflater.removeAllListeners('data');
        inflater.on('error', () => undefined);
        inflater.destroy();
      }
      // Keep draining (and discarding) so the client can read our answer.
      req.resume();
      reject(err);
    };
    const keep = (c: Buffer) => {
      kept += c.length;
      if (kept > maxDecompressed) return fail(new HttpError(413, `body larger than ${maxDecompressed} bytes after decompression`));
      chunks.push(c);
    };
    const onData = (c: Buffer) => {
      sent += c.length;
      if (sent > maxBody) return fail(new HttpError(413, `body larger than ${maxBody} bytes`));
      if (!inflater) return keep(c);
      if (!inflater.write(c)) {
        req.pause();
        inflater.once('drain', () => req.resume());
      }
    };
    req.on('data', onData);
    req.on('error', () => fail(new HttpError(400, 'request aborted')));
    req.on('aborted', () => fail(new HttpError(400, 'request aborted')));
    if (inflater) {
      inflater.on('data', keep);
      inflater.on('error', () => fail(new HttpError(400, `body is not valid ${encoding}`)));
      inflater.on('end', () => {
        if (done) return;
        done = true;
        resolve(Buffer.concat(chunks));
      });
      req.on('end', () => {
        if (!done) inflater.end();
      });
    } else {
      req.on('end', () => {
        if (done) return;
        done = true;
        resolve(Buffer.concat(chunks));
      });
    }
  });
}
