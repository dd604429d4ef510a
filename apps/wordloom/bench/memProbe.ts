/**
 * Preloaded into a benchmark's child process (`NODE_OPTIONS=--import <this file>` with
 * LOOMTRACE_MEM_PROBE=<json file>): every 50 ms, what the process's memory is made of (RSS split
 * into anonymous and file-backed pages from /proc/self/status, V8's heap spaces, external and
 * ArrayBuffer memory), keeping the first sample (the process at rest once started), the sample
 * with the highest RSS and a coarse series, written to the file when the process exits.
 * Benchmarks only: it is never loaded by the product (docs/decisions/0024-worker-peak-rss.md).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

export interface MemSample {
  /** epoch ms */
  t: number;
  /** MB, from /proc/self/status */
  rss: number;
  anon: number;
  file: number;
  /** MB: V8's heap committed / used, external, of it ArrayBuffers */
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** MB committed by each V8 heap space (new_space, old_space, code_space, large_object_space, …) */
  spaces: Record<string, number>;
  /** MB used in each heap space */
  used: Record<string, number>;
}

export interface MemProbeData {
  first: MemSample | undefined;
  peak: MemSample | undefined;
  /** The process's own VmHWM when it exited, MB. */
  hwm: number;
  /** One sample a second. */
  series: MemSample[];
  /** When the process exited: its largest anonymous mappings (/proc/self/smaps), by RSS. */
  anonMaps: AnonMap[];
}

/** One anonymous mapping: its address range's size and RSS (MB), and its name ([heap], [stack], …) if any. */
export interface AnonMap {
  sizeMb: number;
  rssMb: number;
  name: string;
}

/** The anonymous mappings of this process with the most RSS (glibc's arenas, V8's pages, stacks). */
export function anonMaps(top = 12): AnonMap[] {
  const maps: AnonMap[] = [];
  let cur: { size: number; name: string; anon: boolean } | undefined;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const name = head[4] ?? '';
      cur = { size: (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / MB, name, anon: head[3] === '0' && !name.startsWith('/') };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && cur?.anon && Number(rss[1]) > 0) maps.push({ sizeMb: cur.size, rssMb: Number(rss[1]) / 1024, name: cur.name });
  }
  return maps.sort((a, b) => b.rssMb - a.rssMb).slice(0, top);
}

const MB = 1024 * 1024;
const kbToMb = (s: string, key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;

export function sampleMemory(): MemSample {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = process.memoryUsage();
  const spaces: Record<string, number> = {};
  const used: Record<string, number> = {};
  for (const s of getHeapSpaceStatistics()) {
    spaces[s.space_name] = s.space_size / MB;
    used[s.space_name] = s.space_used_size / MB;
  }
  return {
    t: Date.now(),
    rss: kbToMb(status, 'VmRSS'),
    anon: kbToMb(status, 'RssAnon'),
    file: kbToMb(status, 'RssFile'),
    heapTotal: m.heapTotal / MB,
    heapUsed: m.heapUsed / MB,
    external: m.external / MB,
    arrayBuffers: m.arrayBuffers / MB,
    spaces,
    used,
  };
}

/** Starts sampling this process every `ms`; `dump()` returns what was seen so far. */
export function startMemProbe(ms = 50): { dump(): MemProbeData; stop(): void } {
  const data: MemProbeData = { first: undefined, peak: undefined, hwm: NaN, series: [], anonMaps: [] };
  let lastSeries = 0;
  const tick = () => {
    const s = sampleMemory();
    data.first ??= s;
    if (!data.peak || s.rss > data.peak.rss) data.peak = s;
    if (s.t - lastSeries >= 1000) {
      data.series.push(s);
      lastSeries = s.t;
    }
  };
  tick();
  const timer = setInterval(tick, ms);
  timer.unref();
  return {
    dump() {
      data.hwm = kbToMb(readFileSync('/proc/self/status', 'utf8'), 'VmHWM');
      data.anonMaps = anonMaps();
      return data;
    },
    stop: () => clearInterval(timer),
  };
}

const f = (n: number, digits = 0) => n.toFixed(digits);

/** One line: RSS (anon + file), V8 committed by space, external. */
export function describe(s: MemSample | undefined): string {
  if (!s) return 'no sample';
  const sp = s.spaces;
  const u = s.used;
  const space = (k: string, label: string) => `${label} ${f(sp[k] ?? 0, 1)}/${f(u[k] ?? 0, 1)}`;
  // Anonymous memory outside V8's heap and the ArrayBuffers: malloc (freed ArrayBuffers glibc keeps, V8's compiler zones), stacks.
  const native = s.anon - s.heapTotal - s.arrayBuffers;
  return (
    `rss ${f(s.rss, 1)} (anon ${f(s.anon, 1)}, file ${f(s.file, 1)}); heap committed/used ${f(s.heapTotal, 1)}/${f(s.heapUsed, 1)}: ` +
    `${space('new_space', 'new')}, ${space('old_space', 'old')}, ${space('code_space', 'code')}, ${space('large_object_space', 'lo')}, ` +
    `${space('trusted_space', 'trusted')}, ${space('shared_space', 'shared')}; external ${f(s.external, 1)} (ArrayBuffers ${f(s.arrayBuffers, 1)}); other anon ${f(native, 1)}`
  );
}

const file = process.env['LOOMTRACE_MEM_PROBE'];
if (file) {
  const probe = startMemProbe();
  process.on('exit', () => writeFileSync(file, JSON.stringify(probe.dump())));
}
