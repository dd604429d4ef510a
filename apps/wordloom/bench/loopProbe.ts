/**
 * Preloaded into a benchmark's child process (`NODE_OPTIONS=--import <this file>` with
 * LOOMTRACE_LOOP_PROBE=<json file>): every 100 ms, the largest event-loop delay of the window
 * (perf_hooks monitorEventLoopDelay), and every GC pause (PerformanceObserver 'gc'), written to
 * the file when the process exits. Benchmarks only: it is never loaded by the product.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

export interface LoopProbeData {
  /** [window end (epoch ms), largest event-loop delay in the window (ms)] */
  windows: [number, number][];
  /** [start (epoch ms), duration (ms), kind] */
  gcs: [number, number, number][];
}

/** Starts sampling this process; `dump()` returns what was seen so far. */
export function startLoopProbe(): { dump(): LoopProbeData; stop(): void } {
  const h = monitorEventLoopDelay({ resolution: 2 });
  h.enable();
  const data: LoopProbeData = { windows: [], gcs: [] };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as unknown as { detail?: { kind?: number } }).detail)?.kind ?? 0;
      data.gcs.push([performance.timeOrigin + e.startTime, e.duration, kind]);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const timer = setInterval(() => {
    data.windows.push([performance.timeOrigin + performance.now(), h.max / 1e6]);
    h.reset();
  }, 100);
  timer.unref();
  return {
    dump: () => data,
    stop() {
      clearInterval(timer);
      h.disable();
      obs.disconnect();
    },
  };
}

const file = process.env['LOOMTRACE_LOOP_PROBE'];
if (file) {
  const probe = startLoopProbe();
  process.on('exit', () => writeFileSync(file, JSON.stringify(probe.dump())));
}
