import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The UI's files (plain HTML, CSS and JS modules), shipped in public/ beside dist/. */
export function publicDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/web -> public
  return path.resolve(here, '..', '..', 'public');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface StaticFile {
  type: string;
  body: Buffer;
}

/** Loaded once at start: a fixed map of names, so no request path ever reaches the file system. */
export function loadStatic(dir = publicDir()): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { type, body: readFileSync(path.join(dir, name)) });
  }
  // uPlot (the health charts), served from this origin so the CSP stays 'self'.
  const uplotDist = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  for (const name of ['uPlot.esm.js', 'uPlot.min.css']) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { type, body: readFileSync(path.join(uplotDist, name)) });
  }
  return files;
}
