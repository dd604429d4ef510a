/**
 * The published packages as a user gets them: `npm pack` the three, install the tarballs in
 * scratch projects outside the workspace (the npm registry for everything else: a registry that
 * cannot be reached fails this test), type-check the READMEs' examples with `tsc --strict`, and
 * run them against the test run's Postgres.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { until } from './support/wait.js';
import { portFree } from '../src/db/embedded.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** apps/wordloom/dist/test → the repository root. */
const root = path.resolve(here, '..', '..', '..', '..');
const TSC = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline'];

/** The issue's target for `@loomtrace/outbox` + `pg` + `@opentelemetry/api`. */
const MAX_KIB = 4 * 1024;
const MAX_PACKAGES = 18;

/**
 * The environment of a user's shell: none of the npm_* variables `npm test` exports (they would
 * point the child npm at this workspace), and no node_modules/.bin of the workspace on PATH.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  env['PATH'] = (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .filter((p) => !p.includes(`node_modules${path.sep}.bin`) && !p.includes('node-gyp-bin'))
    .join(path.delimiter);
  return { ...env, ...extra };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = userEnv(), timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs and fails loudly, with what the command printed, unless it exits 0. */
async function ok(cmd: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<Ran> {
  const r = await run(cmd, args, cwd, env);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.code}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
  return r;
}

/** The first ```ts block after the heading `## <heading>` of a README, and the n-th one after it (0: the first). */
async function readmeBlock(pkg: string, heading: string, n = 0): Promise<string> {
  const text = await readFile(path.join(root, 'packages', pkg, 'README.md'), 'utf8');
  const at = text.indexOf(`\n## ${heading}\n`);
  assert.ok(at >= 0, `packages/${pkg}/README.md has a "## ${heading}" section`);
  const blocks = [...text.slice(at).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks[n] !== undefined, `packages/${pkg}/README.md: ts block ${n} of "${heading}"`);
  return blocks[n]!;
}

async function scratchProject(label: string): Promise<string> {
  // os.tmpdir(), outside the workspace: nothing resolves from its node_modules.
  const dir = await mkdtemp(path.join(os.tmpdir(), `loomtrace-${label}-`));
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify({ name: `scratch-${label}`, private: true, type: 'module' }, null, 2)}\n`);
  return dir;
}

/** Installed packages, from npm's hidden lockfile: `node_modules/<name>` paths, nested ones included. */
async function installedPackages(dir: string): Promise<string[]> {
  const lock = JSON.parse(await readFile(path.join(dir, 'node_modules', '.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  return Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/'));
}

async function freePort(from: number): Promise<number> {
  for (let p = from; p < from + 500; p++) if (await portFree(p)) return p;
  throw new Error(`no free port from ${from}`);
}

/** A process with its output collected line by line. */
function startNode(script: string, cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  let stderr = '';
  let carry = '';
  child.stdout.on('data', (b: Buffer) => {
    carry += b.toString('utf8');
    const lines = carry.split('\n');
    carry = lines.pop()!;
    out.push(...lines);
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    out,
    stderr: () => stderr,
    exited,
    async line(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
      return until(`a line matching ${re} from ${script} (stdout so far: ${JSON.stringify(out)}, stderr: ${JSON.stringify(stderr)})`, timeoutMs, async () => {
        if (child.exitCode !== null) throw new Error(`${script} exited ${child.exitCode}; stdout ${JSON.stringify(out)}; stderr ${stderr}`);
        for (const l of out) {
          const m = l.match(re);
          if (m) return m;
        }
        return undefined;
      });
    },
  };
}

interface PackedFile {
  path: string;
}
interface Packed {
  name: string;
  filename: string;
  files: PackedFile[];
}

describe('the published packages, packed and installed as a user would', { timeout: 240_000 }, () => {
  let packDir: string;
  const scratch: string[] = [];
  let packed: Map<string, Packed>;
  let db: TestDatabase | undefined;
  const tarball = (name: string) => path.join(packDir, packed.get(name)!.filename);

  before(async () => {
    packDir = await mkdtemp(path.join(os.tmpdir(), 'loomtrace-pack-'));
    // prepack builds each package (tsc -b); `npm test` has just built, so it finds nothing to do.
    const r = await ok('npm', ['pack', '-w', '@loomtrace/outbox', '-w', '@loomtrace/otlp', '-w', '@loomtrace/explorer', '--pack-destination', packDir, '--json'], root);
    packed = new Map((JSON.parse(r.stdout) as Packed[]).map((p) => [p.name, p]));
  });

  after(async () => {
    await db?.drop();
    for (const d of [packDir, ...scratch]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('each tarball holds its dist (no maps, no build info, no tests), migrations, UI, README, CHANGELOG and package.json, and every export and bin it names', async () => {
    assert.deepEqual([...packed.keys()].sort(), ['@loomtrace/explorer', '@loomtrace/otlp', '@loomtrace/outbox']);
    const dirs: Record<string, string> = { '@loomtrace/outbox': 'outbox', '@loomtrace/otlp': 'otlp', '@loomtrace/explorer': 'explorer' };
    for (const [name, p] of packed) {
      const dir = path.join(root, 'packages', dirs[name]!);
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
        exports: Record<string, { types: string; default: string }>;
        bin?: Record<string, string>;
        scripts: Record<string, string>;
      };
      const files = new Set(p.files.map((f) => f.path));
      for (const f of files) {
        assert.match(f, /^(dist\/[\w/.-]+\.(js|d\.ts)|migrations\/\d{6}_[\w-]+\.sql|public\/[\w-]+\.(html|css|js)|README\.md|CHANGELOG\.md|package\.json)$/, `${name} ships ${f}`);
        assert.doesNotMatch(f, /(^|\/)(test|tests|bench)(\/|$)|\.map$|tsbuildinfo/, `${name} ships ${f}`);
      }
      for (const f of ['package.json', 'README.md', 'CHANGELOG.md', 'dist/index.js', 'dist/index.d.ts']) assert.ok(files.has(f), `${name} ships ${f}`);
      for (const [sub, target] of Object.entries(pkg.exports)) {
        for (const f of [target.types, target.default]) assert.ok(files.has(f.replace(/^\.\//, '')), `${name} export "${sub}" → ${f} is in the tarball`);
      }
      for (const [bin, f] of Object.entries(pkg.bin ?? {})) assert.ok(files.has(f.replace(/^\.\//, '')), `${name} bin ${bin} → ${f} is in the tarball`);
      assert.equal(pkg.scripts['prepack'], 'tsc -b', `${name} builds on prepack`);
      // Every migration and UI file of the package, whatever gets added later.
      for (const sub of ['migrations', 'public']) {
        const local = await readdir(path.join(dir, sub)).catch(() => [] as string[]);
        for (const f of local) assert.ok(files.has(`${sub}/${f}`), `${name} ships ${sub}/${f}`);
        if (name === '@loomtrace/otlp') assert.equal(local.length, 0);
      }
    }
    const explorer = new Set(packed.get('@loomtrace/explorer')!.files.map((f) => f.path));
    assert.ok(explorer.has('public/index.html') && explorer.has('migrations/000010_explorer.sql'));
    assert.ok(packed.get('@loomtrace/outbox')!.files.some((f) => f.path === 'migrations/000001_outbox.sql'));
  });

  let app: string;

  it(`@loomtrace/outbox next to pg and @opentelemetry/api: at most ${MAX_KIB / 1024} MB and ${MAX_PACKAGES} packages in node_modules`, async (t) => {
    const outbox = JSON.parse(await readFile(path.join(root, 'packages', 'outbox', 'package.json'), 'utf8')) as Record<string, unknown>;
    // The adapters' libraries (Kysely, Drizzle, Knex) are optional peers: installed only by who uses them.
    const optional = (outbox['peerDependenciesMeta'] ?? {}) as Record<string, { optional?: boolean }>;
    const required = Object.keys(outbox['peerDependencies'] as object).filter((k) => !optional[k]?.optional);
    assert.deepEqual(required.sort(), ['@opentelemetry/api', 'pg']);
    assert.equal(outbox['dependencies'], undefined, 'the outbox has no dependency of its own');

    app = await scratchProject('outbox');
    scratch.push(app);
    await ok('npm', ['install', ...NPM_FLAGS, tarball('@loomtrace/outbox'), 'pg', '@opentelemetry/api'], app);
    const du = await ok('du', ['-sk', 'node_modules'], app);
    const kib = Number(du.stdout.split(/\s/)[0]);
    const packages = await installedPackages(app);
    t.diagnostic(`node_modules: ${kib} KiB on disk, ${packages.length} packages: ${packages.map((p) => p.slice('node_modules/'.length)).join(' ')}`);
    assert.ok(Number.isInteger(kib) && kib > 0, du.stdout);
    assert.ok(packages.includes('node_modules/@loomtrace/outbox') && packages.includes('node_modules/pg') && packages.includes('node_modules/@opentelemetry/api'));
    assert.ok(kib <= MAX_KIB, `node_modules is ${kib} KiB, over ${MAX_KIB}`);
    assert.ok(packages.length <= MAX_PACKAGES, `${packages.length} packages, over ${MAX_PACKAGES}`);
  });

  it("the README's five minutes, verbatim: tsc --strict, then run on a fresh database: migrate() adds only the loomtrace schema, the committed event reaches the Sink, the rolled-back one never does", async () => {
    const example = await readmeBlock('outbox', 'Five minutes');
    for (const name of ['migrate', 'enqueue', 'OutboxWorker', 'Sink', 'begin', 'commit', 'rollback', 'new pg.Pool']) assert.ok(example.includes(name), `the example uses ${name}`);
    // Types for the user's own code (pg, process): what a TypeScript user adds.
    await ok('npm', ['install', ...NPM_FLAGS, '--save-dev', '@types/pg', '@types/node@20'], app);
    await writeFile(path.join(app, 'main.ts'), example);
    // The README's command: `tsc --strict --module nodenext --target es2022 main.ts`, libraries' .d.ts checked too.
    const tsc = await run(process.execPath, [TSC, '--strict', '--module', 'nodenext', '--target', 'es2022', 'main.ts'], app);
    assert.equal(tsc.code, 0, `tsc --strict on the README example:\n${tsc.stdout}${tsc.stderr}`);

    db = await freshDatabase('packaging', { template: false });
    const schemas = async () => (await db!.pool.query<{ nspname: string }>("select nspname from pg_namespace where nspname not like 'pg\\_temp\\_%' and nspname not like 'pg\\_toast\\_temp\\_%' order by 1")).rows.map((r) => r.nspname);
    const before = await schemas();
    assert.ok(!before.includes('loomtrace'));

    const proc = startNode('main.js', app, userEnv({ DATABASE_URL: db.url }));
    try {
      await proc.line(/^email for order-1: \{"totalCents":4200\}$/);
      await until('order-1 acked', 20_000, async () => {
        const { rows } = await db!.pool.query<{ state: string }>("select state from loomtrace.outbox where aggregate_id = 'order-1'");
        return rows[0]?.state === 'done';
      });
      const after = await schemas();
      assert.deepEqual(after.filter((s) => !before.includes(s)), ['loomtrace'], 'migrate() creates the loomtrace schema and no other');
      assert.deepEqual(before.filter((s) => !after.includes(s)), []);
      const { rows: info } = await db.pool.query<{ schema_name: string }>("select schema_name from information_schema.schemata where schema_name = 'loomtrace'");
      assert.equal(info.length, 1);
      // Outside loomtrace, only what the user's own code made: its table and primary key; no function anywhere else.
      const { rows: rels } = await db.pool.query<{ rel: string }>(
        `select n.nspname || '.' || c.relname as rel from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname not in ('loomtrace', 'pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' order by 1`,
      );
      assert.deepEqual(rels.map((r) => r.rel), ['public.orders', 'public.orders_pkey']);
      const { rows: fns } = await db.pool.query<{ n: number }>(
        "select count(*)::int n from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('loomtrace', 'pg_catalog', 'information_schema')",
      );
      assert.equal(fns[0]!.n, 0);
      // The rolled-back order and its event are gone together; the committed ones are there.
      const { rows: orders } = await db.pool.query<{ id: string }>('select id from orders order by id');
      assert.deepEqual(orders.map((r) => r.id), ['order-1']);
      const { rows: events } = await db.pool.query<{ aggregate_id: string; state: string; projection: string; traceparent: string | null }>(
        'select aggregate_id, state, projection, traceparent from loomtrace.outbox order by id',
      );
      assert.deepEqual(events.map((e) => [e.aggregate_id, e.state, e.projection]), [['order-1', 'done', 'emails']]);
    } finally {
      // The README's Ctrl-C: worker.stop(), pool.end(), and Node exits on its own.
      proc.child.kill('SIGINT');
    }
    assert.equal(await proc.exited, 0, `main.js exit; stderr: ${proc.stderr()}`);
    assert.deepEqual(proc.out, ['order-2 rolled back: card declined', 'email for order-1: {"totalCents":4200}']);
    assert.equal(proc.stderr(), '');
  });

  it('the explorer and otlp tarballs: one pg and one API beside the outbox, their READMEs type-check, the explorer serves its UI from public/, `npx loomtrace` works', async () => {
    assert.ok(db, 'runs after the outbox example (its database)');
    const dir = await scratchProject('explorer');
    scratch.push(dir);
    await ok(
      'npm',
      [
        'install',
        ...NPM_FLAGS,
        tarball('@loomtrace/outbox'),
        tarball('@loomtrace/otlp'),
        tarball('@loomtrace/explorer'),
        // The otlp README's SDK, of the line @loomtrace/otlp goes with (its @opentelemetry/core 2.x).
        '@opentelemetry/sdk-trace-node@2',
        '@opentelemetry/resources@2',
        '@types/pg',
        '@types/node@20',
      ],
      dir,
    );
    const packages = await installedPackages(dir);
    for (const one of ['pg', '@opentelemetry/api', '@loomtrace/outbox']) {
      assert.deepEqual(packages.filter((p) => p === `node_modules/${one}` || p.endsWith(`/node_modules/${one}`)), [`node_modules/${one}`], `one copy of ${one}`);
    }

    // The otlp README: the SDK wired through OtlpSpanProcessor, and its exporter as the outbox worker's eventSpans (the structural seam).
    await writeFile(path.join(dir, 'tracing.ts'), await readmeBlock('otlp', 'Five minutes', 0));
    await writeFile(
      path.join(dir, 'worker.ts'),
      [
        "import pg from 'pg';",
        "import { OutboxWorker, WRITTEN, type Sink } from '@loomtrace/outbox';",
        'const pool = new pg.Pool();',
        "const emails: Sink = { name: 'emails', system: 'smtp', write: async (events) => events.map(() => WRITTEN) };",
        await readmeBlock('otlp', 'Five minutes', 1),
        'void worker;',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'explorer.ts'), await readmeBlock('explorer', 'Five minutes'));
    // --skipLibCheck here: the outbox's .d.ts were checked in full above; checking @types/node and
    // fastify's own .d.ts again would double this test's time. The examples' use of every type is checked.
    const tsc = await run(process.execPath, [TSC, '--strict', '--skipLibCheck', '--module', 'nodenext', '--target', 'es2022', 'tracing.ts', 'worker.ts', 'explorer.ts'], dir);
    assert.equal(tsc.code, 0, `tsc --strict on the otlp and explorer README examples:\n${tsc.stdout}${tsc.stderr}`);

    // The bin from the tarball (--no: never fetch a package named loomtrace from the registry).
    assert.ok((await realpath(path.join(dir, 'node_modules', '.bin', 'loomtrace'))).startsWith(await realpath(path.join(dir, 'node_modules', '@loomtrace', 'explorer'))));
    const help = await ok('npx', ['--no', '--', 'loomtrace', '--help'], dir);
    assert.match(help.stdout, /^usage: loomtrace <command> \[options\]/);
    for (const c of ['why', 'trace', 'events', 'replay']) assert.match(help.stdout, new RegExp(`^  ${c} `, 'm'));
    const events = await ok('npx', ['--no', '--', 'loomtrace', 'events', '--state', 'done', '--json'], dir, userEnv({ DATABASE_URL: db.url }));
    const listed = JSON.parse(events.stdout) as { state: string; events: Array<{ aggregateId: string }> };
    assert.deepEqual(listed.events.map((e) => e.aggregateId), ['order-1']);

    // The explorer README, run: its migrations and its UI come from the installed tarball.
    const port = await freePort(24_100);
    const otlpPort = await freePort(port + 1);
    const proc = startNode('explorer.js', dir, userEnv({ DATABASE_URL: db.url, EXPLORER_PORT: String(port), EXPLORER_OTLP_PORT: String(otlpPort) }));
    try {
      const m = await proc.line(/^explorer (http:\/\/\S+)\s+OTLP\/HTTP (http:\/\/\S+)$/);
      assert.equal(m[1], `http://127.0.0.1:${port}`);
      const { rows } = await db.pool.query<{ n: number }>("select count(*)::int n from explorer.migrations");
      assert.ok(rows[0]!.n >= 1);
      for (const [url, file] of [
        ['/', 'index.html'],
        ['/static/app.css', 'app.css'],
        ['/static/trace.js', 'trace.js'],
      ] as const) {
        const res = await fetch(`${m[1]}${url}`);
        assert.equal(res.status, 200, url);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), await readFile(path.join(root, 'packages', 'explorer', 'public', file)), `${url} is public/${file}`);
      }
      const api = (await (await fetch(`${m[1]}/api/events?state=done`)).json()) as { events: Array<{ aggregateId: string }> };
      assert.deepEqual(api.events.map((e) => e.aggregateId), ['order-1']);
      const otlp = await fetch(`${m[2]}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceSpans":[]}' });
      assert.equal(otlp.status, 200);
    } finally {
      proc.child.kill('SIGINT');
    }
    assert.equal(await proc.exited, 0, `explorer.js exit; stderr: ${proc.stderr()}`);
  });
});
