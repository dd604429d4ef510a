/**
 * Terminal line width: `--width N` when given, else the terminal's columns, else $COLUMNS,
 * else 80. Every line a command prints is cut to it (with an ellipsis), so nothing wraps.
 */
import { option } from './args.js';

export const MIN_WIDTH = 40;

export function lineWidth(args: readonly string[]): number {
  const given = option(args, '--width');
  const env = Number(process.env['COLUMNS']);
  const n = given !== undefined ? Number(given) : process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : Number.isFinite(env) && env > 0 ? env : 80;
  return Math.max(MIN_WIDTH, Math.min(400, Number.isFinite(n) ? Math.floor(n) : 80));
}

/** Control characters out: text from senders or the database must not drive the terminal. */
export const safe = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** Cut to `width` characters (code points), an ellipsis marking the cut. */
export function fit(line: string, width: number): string {
  const cps = Array.from(line);
  return cps.length <= width ? line : `${cps.slice(0, width - 1).join('')}…`;
}

export function pad(s: string, n: number): string {
  const cps = Array.from(s);
  return cps.length >= n ? fit(s, n) : s + ' '.repeat(n - cps.length);
}

/**
 * Words of `text` in lines of at most `width` characters, each line after `indent` spaces (a word
 * longer than a line is cut, with an ellipsis).
 */
export function wrap(text: string, width: number, indent: number): string[] {
  const room = Math.max(10, width - indent);
  const lead = ' '.repeat(indent);
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const w = fit(word, room);
    if (cur && Array.from(cur).length + 1 + Array.from(w).length > room) {
      lines.push(lead + cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) lines.push(lead + cur);
  return lines;
}
