/**
 * Re-renders docs/BENCHMARKS.md from the last suite run's figures (.loomtrace/bench-last.json)
 * without measuring again: for changes to the document's wording. `node dist/bench/render.js`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './env.js';
import { renderReport, type Report } from './report.js';

const report = JSON.parse(readFileSync(path.join(ROOT, '.loomtrace', 'bench-last.json'), 'utf8')) as Report;
writeFileSync(path.join(ROOT, 'docs', 'BENCHMARKS.md'), renderReport(report));
console.log('wrote docs/BENCHMARKS.md from .loomtrace/bench-last.json');
