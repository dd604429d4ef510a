/**
 * `enqueue`'s statements use node-postgres placeholders ($1, $2, …). Libraries that number
 * parameters themselves (Knex's `?`, Drizzle's chunks) get the text cut at each placeholder and
 * the value each one names, in order of appearance (a repeated placeholder repeats its value).
 */
export function splitPlaceholders(text: string, values: readonly unknown[]): { parts: string[]; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const re = /\$(\d+)/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const n = Number(m[1]);
    if (n < 1 || n > values.length) throw new RangeError(`placeholder $${n} has no value (${values.length} given)`);
    parts.push(text.slice(last, m.index));
    params.push(values[n - 1]);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return { parts, params };
}
