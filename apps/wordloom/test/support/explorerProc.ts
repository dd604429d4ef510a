import { readFileSync } from 'node:fs';
import { freePort, startProcess, type Proc } from './procs.js';

/** The explorer as a real process (`node dist/src/cli/explorer.js`); resolves once it listens. */
export async function startExplorerProcess(databaseUrl: string, env: Record<string, string> = {}): Promise<Proc & { uiUrl: string; otlpUrl: string; pid: number }> {
  const [ui, otlp] = [await freePort(), await freePort()];
  const p = startProcess('explorer', 'explorer.js', { DATABASE_URL: databaseUrl, EXPLORER_PORT: String(ui), EXPLORER_OTLP_PORT: String(otlp), ...env });
  await p.waitFor(/explorer listening/, 30_000);
  return Object.assign(p, { uiUrl: `http://127.0.0.1:${ui}`, otlpUrl: `http://127.0.0.1:${otlp}`, pid: p.proc.pid! });
}

/** A process's resident memory now (VmRSS) and its peak so far (VmHWM), in MiB, from /proc. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}
