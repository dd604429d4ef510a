/**
 * The end-to-end benchmark alone, on the bench's embedded Postgres (or DATABASE_URL):
 * `node apps/wordloom/dist/bench/e2eMain.js --rate 200 --seconds 30 [--diagnose]
 * [--connections 64] [--warmup 3]`. `BENCH_E2E_TRACING=off` runs the API and the worker untraced, to
 * see what tracing adds to the same run.
 */
import { parseArgs } from 'node:util';
import { endToEnd } from './e2e.js';
import { startBenchPostgres } from './env.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '30' },
    diagnose: { type: 'boolean', default: false },
    connections: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '3' },
  },
});
const log = (s: string) => console.log(s);
const pgh = await startBenchPostgres(log);
try {
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  log(`## End to end: PATCH → visible in search, ${rate} req/s for ${seconds} s, tracing on${values.diagnose ? ', diagnosing' : ''}`);
  await endToEnd(await pgh.database('bench_wordloom'), log, rate, seconds, {
    diagnose: values.diagnose,
    connections: Number(values.connections),
    warmupSeconds: Number(values.warmup),
  });
} finally {
  await pgh.stop();
}
