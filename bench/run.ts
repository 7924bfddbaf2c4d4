/**
 * The benchmark harness: `npm run bench -- <scenario|all> [options]`.
 *
 * Starts a durable throwaway PostgreSQL (or uses `--database-url`), then for each
 * scenario a fresh database, the Tasker server as its own process and worker
 * processes; prints a table per scenario and writes
 * `bench/results/<timestamp>-<scenario>.json`. `--smoke` runs every scenario (or the
 * one named) at tiny sizes and only checks that each completes — for CI.
 * See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, resultsDir } from './lib/paths.js';
import type { BenchPostgres } from './lib/postgres.js';
import { externalPostgres, readServerSettings, startDurableCluster } from './lib/postgres.js';
import type { Environment, ScenarioResult } from './lib/report.js';
import { formatResult, machineInfo, writeResult } from './lib/report.js';
import type { RunContext, RunOptions, Stack, StackExtras } from './lib/stack.js';
import { withStack } from './lib/stack.js';
import { dagScale } from './scenarios/dag-scale.js';
import { fanOut } from './scenarios/fan-out.js';
import { latency } from './scenarios/latency.js';
import { polyglot } from './scenarios/polyglot.js';
import { sessions } from './scenarios/sessions.js';
import { throughput } from './scenarios/throughput.js';

const SCENARIOS: Readonly<Record<string, (stack: Stack) => Promise<ScenarioResult>>> = {
  throughput,
  latency,
  'dag-scale': dagScale,
  'fan-out': fanOut,
  polyglot,
  sessions,
};

const USAGE = `Usage: npm run bench -- <scenario|all> [options]

Scenarios: ${Object.keys(SCENARIOS).join(', ')}

Options:
  --size N              scenario size (see bench/README.md for what it counts)
  --database-url URL    use this PostgreSQL instead of a throwaway cluster
  --smoke               tiny sizes; every scenario unless one is named; only completion is checked
  --profile             run the server under node --cpu-prof and summarize the profile
  --explain             log every statement's executed plan (auto_explain) and summarize the hot ones
  --workers N           Node worker processes (throughput, dag-scale, fan-out)
  --concurrency N       concurrency of each worker
  --pool N              server database pool size (TASKER_DATABASE_POOL_SIZE)
  --duration S          seconds to observe (sessions)
  --heap                sessions: heap snapshots of the server before and after the sessions connect, compared
  --worker-receive-bytes N
                        the Node workers' gRPC receive limit (default grpc-js's 4 MiB); for engines older
                        than workers.max_batch_bytes, whose StepBatches deep in dag-scale exceed it
  -h, --help`;

function positiveInt(name: string, value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

function parse(argv: string[]): { scenarios: string[]; options: RunOptions; databaseUrl: string | null } | null {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      'database-url': { type: 'string' },
      smoke: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      explain: { type: 'boolean', default: false },
      workers: { type: 'string' },
      concurrency: { type: 'string' },
      pool: { type: 'string' },
      duration: { type: 'string' },
      heap: { type: 'boolean', default: false },
      'worker-receive-bytes': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const named = positionals[0] ?? (values.smoke ? 'all' : undefined);
  if (!named) throw new Error(`name a scenario\n\n${USAGE}`);
  if (positionals.length > 1) throw new Error(`one scenario at a time (or all), got ${positionals.join(' ')}`);
  if (named !== 'all' && !SCENARIOS[named]) throw new Error(`unknown scenario ${named}\n\n${USAGE}`);
  return {
    scenarios: named === 'all' ? Object.keys(SCENARIOS) : [named],
    databaseUrl: values['database-url'] ?? null,
    options: {
      size: positiveInt('size', values.size),
      smoke: values.smoke ?? false,
      profile: values.profile ?? false,
      explain: values.explain ?? false,
      workers: positiveInt('workers', values.workers),
      concurrency: positiveInt('concurrency', values.concurrency),
      pool: positiveInt('pool', values.pool),
      duration: positiveInt('duration', values.duration),
      heap: values.heap ?? false,
      workerReceiveBytes: positiveInt('worker-receive-bytes', values['worker-receive-bytes']),
    },
  };
}

/** Which engine code is measured: BENCH_SOURCE (set by snapshot-run.sh), else the git commit and uncommitted engine changes. */
function sourceInfo(): string {
  if (process.env.BENCH_SOURCE) return process.env.BENCH_SOURCE;
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', repoRoot, '--no-optional-locks', ...args], { encoding: 'utf8' });
    const commit = git('rev-parse', 'HEAD').trim();
    const dirty = git('status', '--porcelain', '--', 'src', 'sql', 'migrations').split('\n').filter(Boolean).length;
    return dirty ? `${commit} + ${dirty} uncommitted change(s) in src/, sql/, migrations/` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

async function runScenario(ctx: RunContext, environment: Environment, name: string): Promise<boolean> {
  const fn = SCENARIOS[name];
  if (!fn) throw new Error(`unknown scenario ${name}`);
  const extras: StackExtras = { profile: null, plans: null, serverEnv: null, loadAverage: null };
  const started = performance.now();
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  ctx.log(`--- ${name} (load average ${loadBefore.join(' ')}${(loadBefore[0] ?? 0) > 0.5 ? ': something else is running, figures will suffer' : ''})`);
  try {
    const result = await withStack(ctx, name, extras, fn);
    extras.loadAverage = { before: loadBefore, after: loadavg().map((l) => Math.round(l * 100) / 100) };
    console.log(formatResult(result));
    if (extras.profile) {
      console.log(`  server CPU profile (busy ${extras.profile.busyMs} ms of ${extras.profile.sampledMs} ms sampled), top self time:`);
      for (const e of extras.profile.topSelf.slice(0, 8)) console.log(`    ${e.percent.toFixed(1).padStart(5)}%  ${e.name}`);
    }
    if (extras.plans) {
      console.log('  statements by total execution time (auto_explain):');
      for (const p of extras.plans.slice(0, 6)) console.log(`    ${p.totalMs.toFixed(1).padStart(9)} ms  ${String(p.count).padStart(6)} x  ${p.statement}`);
    }
    const file = writeResult(resultsDir, ctx.runId, environment, ctx.options, result, extras);
    console.log(`  (${Math.round((performance.now() - started) / 1000)} s; written to ${file})`);
    return true;
  } catch (err) {
    console.error(`scenario ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return false;
  }
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  if (!parsed) {
    console.log(USAGE);
    return 0;
  }
  const runId = timestamp();
  const outDir = join(resultsDir, runId);
  mkdirSync(outDir, { recursive: true });
  const log = (message: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
  const postgres: BenchPostgres = parsed.databaseUrl ? externalPostgres(parsed.databaseUrl) : await startDurableCluster();
  let failed = 0;
  try {
    const server = await readServerSettings(postgres.url);
    log(`PostgreSQL: ${postgres.description}`);
    log(`durability: fsync=${server.settings.fsync} synchronous_commit=${server.settings.synchronous_commit} full_page_writes=${server.settings.full_page_writes}`);
    const environment: Environment = {
      date: new Date().toISOString(),
      source: sourceInfo(),
      machine: machineInfo(),
      node: process.version,
      postgres: { version: server.version, description: postgres.description, settings: server.settings },
    };
    log(`engine source: ${environment.source}`);
    log(`machine: ${environment.machine.cores} cores (${environment.machine.cpuModel}), ${environment.machine.memoryGiB} GiB; Node ${process.version}`);
    const ctx: RunContext = { runId, postgres, options: parsed.options, outDir, log };
    for (const name of parsed.scenarios) if (!(await runScenario(ctx, environment, name))) failed += 1;
  } finally {
    await postgres.stop();
  }
  if (parsed.options.smoke) console.log(`bench smoke: ${parsed.scenarios.length - failed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

const code = await main();
process.exitCode = code;
