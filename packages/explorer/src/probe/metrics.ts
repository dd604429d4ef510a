/**
 * The probe's outcome as Prometheus metrics (text exposition format 0.0.4). Labels are the
 * pipeline's declared names and the outcome only: never an id or user content.
 */
import type { ProbeOutcome, ProbeResult } from './probe.js';

const OUTCOMES: readonly ProbeOutcome[] = ['ok', 'change_failed', 'not_visible', 'no_trace', 'bad_shape'];
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

interface Series {
  success: number;
  visibleSeconds: number | null;
  lastRun: number;
  runs: Map<ProbeOutcome, number>;
}

export class ProbeMetrics {
  private readonly series = new Map<string, Series>();

  record(pipeline: { aggregateType: string; projection: string }, r: ProbeResult, now = Date.now()): void {
    const key = `${pipeline.aggregateType}\u0000${pipeline.projection}`;
    const s = this.series.get(key) ?? { success: 0, visibleSeconds: null, lastRun: 0, runs: new Map(OUTCOMES.map((o) => [o, 0])) };
    s.success = r.ok ? 1 : 0;
    if (r.visibleMs !== null) s.visibleSeconds = r.visibleMs / 1000;
    s.lastRun = now / 1000;
    s.runs.set(r.outcome, (s.runs.get(r.outcome) ?? 0) + 1);
    this.series.set(key, s);
  }

  text(): string {
    const lines = [
      '# HELP loomtrace_probe_success 1 when the last canary change became visible with the declared trace shape, 0 otherwise.',
      '# TYPE loomtrace_probe_success gauge',
    ];
    const rows = [...this.series].map(([k, s]) => {
      const [aggregate, projection] = k.split('\u0000') as [string, string];
      return { labels: `aggregate_type="${esc(aggregate)}",projection="${esc(projection)}"`, s };
    });
    for (const { labels, s } of rows) lines.push(`loomtrace_probe_success{${labels}} ${s.success}`);
    lines.push('# HELP loomtrace_probe_visible_seconds Change-to-visible time of the last canary change that became visible.', '# TYPE loomtrace_probe_visible_seconds gauge');
    for (const { labels, s } of rows) if (s.visibleSeconds !== null) lines.push(`loomtrace_probe_visible_seconds{${labels}} ${s.visibleSeconds}`);
    lines.push('# HELP loomtrace_probe_last_run_timestamp_seconds When the probe last ran.', '# TYPE loomtrace_probe_last_run_timestamp_seconds gauge');
    for (const { labels, s } of rows) lines.push(`loomtrace_probe_last_run_timestamp_seconds{${labels}} ${s.lastRun}`);
    lines.push('# HELP loomtrace_probe_runs_total Probe runs by outcome.', '# TYPE loomtrace_probe_runs_total counter');
    for (const { labels, s } of rows) for (const [o, n] of s.runs) lines.push(`loomtrace_probe_runs_total{${labels},outcome="${o}"} ${n}`);
    return `${lines.join('\n')}\n`;
  }
}
