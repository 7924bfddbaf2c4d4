/**
 * Two Tasker instances on one PostgreSQL database, as deployed: instance A runs as
 * its own process (`node --import tsx src/cli/main.ts serve`, configured through
 * TASKER_* variables) and is ended with SIGKILL, the closest a test gets to a
 * crashed machine; instance B runs in this process (`startTasker`) and survives.
 * Workers are the Node SDK's `Worker`.
 *
 * A worker reaches instance A through a TCP relay standing for the network path it
 * connects over (a load balancer, a DNS name): after A dies the relay refuses
 * connections until it is pointed at B, so the test decides when the worker's
 * session reaches B. The relay can also lose A's replies, as a dying link would.
 *
 * - A crash mid-run loses no task: the leases held through A run out, B's reaper
 *   takes them back, and B's worker runs those steps again (attempt 2); every step
 *   completes exactly once, and the crashed side's late results, resent to B when its
 *   worker resumes there, are refused as stale.
 * - A worker whose stream to A breaks resumes its session on B with its handle, keeps
 *   its in-flight step and finishes it there (attempt 1); a result A committed but
 *   could not acknowledge before dying is resent to B and acknowledged as a duplicate:
 *   every step completes once.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { ReportRejectedError, TaskerClient, Worker, silentLogger } from '../../clients/node/src/index.js';
import type { SessionInfo, Step, StepHandler, Task, TemplateInput } from '../../clients/node/src/index.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { repoRoot } from '../support/paths.js';

const silent = pino({ level: 'silent' });
const NS = 'twoinst';

/** The settings both instances run with (short, so a lost lease comes back within seconds). */
const HEARTBEAT_MS = 250;
const LEASE_MS = 3_000;
const SESSION_TTL_MS = 60_000;
const POLL_MS = 100;
const REAPER_MS = 100;

/** A promise with its resolver, for handlers the test steers. */
function latch(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Polls `probe` until `accept` holds (generous timeout; no wall-clock assertion). */
async function eventually<T>(probe: () => T | Promise<T>, accept: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Instance A: a `tasker serve` process on the test database. */
interface ServerProcess {
  readonly address: string;
  readonly port: number;
  /** Its stdout and stderr so far (for failure messages). */
  readonly output: string[];
  /** SIGKILL (no drain, no shutdown path), resolved once the process is gone. */
  kill(): Promise<void>;
}

/** Starts `tasker serve` with the shared settings and resolves with the address from its "Tasker listening on" line. */
async function spawnInstance(databaseUrl: string, instanceId: string): Promise<ServerProcess> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKER_')) env[k] = v;
  Object.assign(env, {
    TASKER_ENV: 'test',
    TASKER_DATABASE_URL: databaseUrl,
    TASKER_DATABASE_POOL_SIZE: '6',
    TASKER_SERVER_HOST: '127.0.0.1',
    TASKER_SERVER_PORT: '0',
    TASKER_SERVER_INSTANCE_ID: instanceId,
    TASKER_LOG_LEVEL: 'info',
    TASKER_LOG_PRETTY: 'false',
    TASKER_WORKERS_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
    TASKER_WORKERS_LEASE_MS: String(LEASE_MS),
    TASKER_WORKERS_SESSION_TTL_MS: String(SESSION_TTL_MS),
    TASKER_ENGINE_POLL_INTERVAL_MS: String(POLL_MS),
    TASKER_ENGINE_REAPER_INTERVAL_MS: String(REAPER_MS),
    TASKER_TEMPLATES_REGISTER_ON_START: 'false',
  });
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = once(child, 'exit');
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const address = await new Promise<string>((resolve, reject) => {
    const fail = (why: string) => reject(new Error(`instance ${instanceId} ${why}:\n${output.slice(-20).join('\n')}`));
    const timer = setTimeout(() => fail('did not start within 60 s'), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      if (!line.includes('Tasker listening on')) return;
      const parsed = JSON.parse(line) as { address?: string };
      if (parsed.address) {
        clearTimeout(timer);
        resolve(parsed.address);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(`exited during start-up (code ${code}, signal ${signal})`);
    });
  });
  return {
    address,
    port: Number(address.slice(address.lastIndexOf(':') + 1)),
    output,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * A TCP relay on 127.0.0.1:0 to a port on 127.0.0.1; either side closing closes the
 * other. It can stop passing the server's bytes back (a reply lost on the way).
 */
class Relay {
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #target: number;

  private constructor(server: Server, target: number) {
    this.#server = server;
    this.#target = target;
    server.on('connection', (client) => this.#pipe(client));
  }

  static async open(target: number): Promise<Relay> {
    const server = createServer();
    const relay = new Relay(server, target);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get address(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** New connections go to `port` from now on. */
  retarget(port: number): void {
    this.#target = port;
  }

  /** On the open connections, what the server sends from now on is read and dropped. */
  dropReplies(): void {
    for (const { client, upstream } of this.#pairs) {
      upstream.unpipe(client);
      upstream.on('data', () => undefined);
    }
  }

  #pipe(client: Socket): void {
    const upstream = connect(this.#target, '127.0.0.1');
    const pair = { client, upstream };
    this.#pairs.add(pair);
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Which worker ran which attempt of which step. */
interface Run {
  readonly worker: string;
  readonly step: string;
  readonly stepId: string;
  readonly attempt: number;
}

describe('two instances on one PostgreSQL database', () => {
  let target: TestDatabase;
  let instanceB: RunningTasker;
  let client: TaskerClient;
  let admin: TaskerClient;
  const cleanups: Array<() => Promise<void> | void> = [];

  /** A started SDK worker named `name` on `address`, stopped after the test. */
  async function startWorker(name: string, address: string, concurrency: number, handlers: Record<string, StepHandler>): Promise<[Worker, SessionInfo]> {
    const worker = new Worker({
      address,
      token: 'test-worker-token',
      name,
      concurrency,
      reconnect: { initialMs: 20, maxMs: 200 },
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 },
      logger: silentLogger,
      handlers,
    });
    cleanups.push(() => worker.stop({ graceMs: 0 }));
    return [worker, await worker.start()];
  }

  async function instanceA(instanceId: string): Promise<ServerProcess> {
    const a = await spawnInstance(target.url!, instanceId);
    cleanups.push(() => a.kill());
    return a;
  }

  async function relayTo(port: number): Promise<Relay> {
    const relay = await Relay.open(port);
    cleanups.push(() => relay.close());
    return relay;
  }

  async function runTask(template: TemplateInput): Promise<string> {
    await client.registerTemplate(template);
    return (await client.createTask({ namespace: NS, name: template.name })).task.taskId;
  }

  /** The audit of every step of `task`, by step name. */
  async function audits(task: Task) {
    const entries = await Promise.all(task.steps.map(async (s) => [s.name, await admin.getStepAudit(s.stepId)] as const));
    return new Map(entries);
  }

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    const config = loadConfig({
      env: { TASKER_ENV: 'test' },
      overrides: {
        server: { host: '127.0.0.1', port: 0, instance_id: 'instance-b', shutdown_grace_ms: 1_000 },
        database: { url: target.url!, pool_size: 6 },
        workers: { heartbeat_interval_ms: HEARTBEAT_MS, lease_ms: LEASE_MS, session_ttl_ms: SESSION_TTL_MS },
        engine: { poll_interval_ms: POLL_MS, reaper_interval_ms: REAPER_MS },
        templates: { register_on_start: false },
      },
    });
    instanceB = await startTasker(config, silent);
    client = new TaskerClient({ address: instanceB.address, token: 'test-client-token' });
    admin = new TaskerClient({ address: instanceB.address, token: 'test-admin-token' });
  });

  afterAll(async () => {
    client?.close();
    admin?.close();
    await instanceB?.stop();
    await target?.close();
  });

  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  test('killing instance A mid-run loses no step: its leases expire, B runs them again, each result is applied once', async () => {
    const a = await instanceA('instance-a');
    const relay = await relayTo(a.port);
    const runs: Run[] = [];
    const releaseA = latch();
    const gateB = latch();
    /** Records the run and returns the result a handler reports: who ran which attempt. */
    const ran = (worker: string, step: Step) => {
      runs.push({ worker, step: step.name, stepId: step.id, attempt: step.attempt });
      return { by: worker, attempt: step.attempt };
    };

    // Worker A alone serves `flow.start`, so the task begins on A; both serve the fan-out and the join.
    const [workerA, welcomeA] = await startWorker('worker-a', relay.address, 4, {
      'flow.start': (step) => ran('worker-a', step),
      'flow.fan': async (step) => {
        const result = ran('worker-a', step);
        await releaseA.promise;
        return result;
      },
      'flow.join': (step) => ran('worker-a', step),
    });
    const errorsA: Error[] = [];
    workerA.on('error', (err) => errorsA.push(err));
    // Worker B takes one step at a time and holds its first fan step until A is gone, so A gets the rest.
    const [workerB, welcomeB] = await startWorker('worker-b', instanceB.address, 1, {
      'flow.fan': async (step) => {
        const result = ran('worker-b', step);
        await gateB.promise;
        return result;
      },
      'flow.join': (step) => ({ ...ran('worker-b', step), inputs: Object.keys(step.ancestorResults).sort() }),
    });
    const errorsB: Error[] = [];
    workerB.on('error', (err) => errorsB.push(err));
    expect(welcomeA.serverInstance).toBe('instance-a');
    expect(welcomeB.serverInstance).toBe('instance-b');

    const fans = ['fan1', 'fan2', 'fan3', 'fan4'];
    const taskId = await runTask({
      namespace: NS,
      name: 'crash',
      version: '1.0.0',
      identityStrategy: 'always_unique',
      steps: [
        { name: 'start', handler: 'flow.start' },
        ...fans.map((name) => ({ name, handler: 'flow.fan', dependsOn: ['start'] })),
        { name: 'join', handler: 'flow.join', dependsOn: fans },
      ].map((s) => ({ ...s, retry: { maxAttempts: 3, backoff: 'fixed' as const, baseMs: 0, jitter: 0 } })),
    });

    // Every fan step is running: at most one on B, the others on A, their starts committed by A.
    await eventually(() => runs.filter((r) => r.step.startsWith('fan')).length, (n) => n === fans.length, 'every fan step to start');
    const onA = runs.filter((r) => r.worker === 'worker-a' && r.step.startsWith('fan'));
    expect(onA.length).toBeGreaterThanOrEqual(fans.length - 1);
    await eventually(() => workerA.unacknowledgedReports, (n) => n === 0, "A's acks of the started reports");
    const before = await client.getTask(taskId);
    for (const r of onA) expect(before.steps.find((s) => s.name === r.step)).toMatchObject({ state: 'in_progress', attempts: 1 });

    await a.kill();
    gateB.resolve();
    const task = await client.waitForTask(taskId, { timeoutMs: 60_000 });
    expect(task.state).toBe('complete');

    const moved = new Set(onA.map((r) => r.step));
    const expectedResults: Record<string, unknown> = { start: { by: 'worker-a', attempt: 1 } };
    for (const name of fans) expectedResults[name] = moved.has(name) ? { by: 'worker-b', attempt: 2 } : { by: 'worker-b', attempt: 1 };
    expectedResults.join = { by: 'worker-b', attempt: 1, inputs: [...fans, 'start'] };
    expect(task.results).toEqual(expectedResults);
    // The steps in flight on A ran again on B's worker, as attempt 2, and nowhere else after the crash.
    for (const name of moved) {
      expect(runs.filter((r) => r.step === name).map((r) => [r.worker, r.attempt])).toEqual([
        ['worker-a', 1],
        ['worker-b', 2],
      ]);
    }
    const byStep = await audits(task);
    for (const step of task.steps) {
      const audit = byStep.get(step.name)!;
      const completions = audit.filter((t) => t.toState === 'complete');
      expect(completions, `completions of ${step.name}`).toHaveLength(1);
      expect(completions[0]!.attempt).toBe(moved.has(step.name) ? 2 : 1);
      if (moved.has(step.name)) {
        expect(step.attempts).toBe(2);
        expect(audit).toContainEqual(
          expect.objectContaining({ fromState: 'in_progress', toState: 'waiting_for_retry', attempt: 1, reason: expect.stringMatching(/^LeaseExpired: /) }),
        );
      }
    }

    // A's worker finishes its attempts late, reaches B, resumes its session and resends those results: each is refused.
    releaseA.resolve();
    await eventually(() => workerA.unacknowledgedReports, (n) => n === moved.size, "worker A's late completion reports");
    const resumed = once(workerA, 'resumed');
    relay.retarget(instanceB.port);
    const [info] = (await resumed) as [SessionInfo];
    expect(info).toMatchObject({ sessionId: welcomeA.sessionId, resumed: true, serverInstance: 'instance-b', inFlight: [] });
    await eventually(() => workerA.unacknowledgedReports, (n) => n === 0, "B's acks of worker A's late reports");
    const refusals = errorsA.map((e) => (e instanceof ReportRejectedError ? [e.stepId, e.attempt, e.reason] : String(e)));
    expect(refusals.sort()).toEqual(onA.map((r) => [r.stepId, 1, 'STALE_ATTEMPT']).sort());
    expect(errorsB).toEqual([]);
    const after = await client.getTask(taskId);
    expect(after.results).toEqual(expectedResults);
    for (const [name, audit] of await audits(after)) {
      expect(audit.filter((t) => t.toState === 'complete'), `completions of ${name}`).toHaveLength(1);
    }
  });

  test('a worker whose stream to A breaks resumes on B with its handle: its held step is kept, a result A committed is not applied again', async () => {
    const a = await instanceA('instance-a-resume');
    const relay = await relayTo(a.port);
    const started = new Map([['kept', latch()], ['committed', latch()]]);
    const release = new Map([['kept', latch()], ['committed', latch()]]);
    const runs: Array<{ step: string; attempt: number; startedOn: string }> = [];
    // The instance the worker's session is on when the handler looks (handlers run only after start()).
    const server = () => worker.session?.serverInstance ?? 'none';
    const [worker] = await startWorker('worker-hop', relay.address, 2, {
      'hop.work': async (step, ctx) => {
        runs.push({ step: step.name, attempt: step.attempt, startedOn: server() });
        started.get(step.name)?.resolve();
        await release.get(step.name)?.promise;
        if (step.name === 'kept') await ctx.progress({ reportedOn: server() });
        return { finishedOn: server(), attempt: step.attempt };
      },
    });
    const errors: Error[] = [];
    worker.on('error', (err) => errors.push(err));
    const completed: string[] = [];
    worker.on('step:completed', (step) => completed.push(step.name));
    const first = worker.session!;
    expect(first.serverInstance).toBe('instance-a-resume');

    // first -> (kept, committed) -> after, all run by this one worker.
    const taskId = await runTask({
      namespace: NS,
      name: 'hop',
      version: '1.0.0',
      identityStrategy: 'always_unique',
      steps: [
        { name: 'first', dependsOn: [] },
        { name: 'kept', dependsOn: ['first'] },
        { name: 'committed', dependsOn: ['first'] },
        { name: 'after', dependsOn: ['kept', 'committed'] },
      ].map((s) => ({ ...s, handler: 'hop.work', retry: { maxAttempts: 3, backoff: 'fixed' as const, baseMs: 0, jitter: 0 } })),
    });
    await Promise.all([...started.values()].map((l) => l.promise));
    await eventually(() => worker.unacknowledgedReports, (n) => n === 0, "A's acks of the starts");
    const stepId = (name: string, task: Task) => task.steps.find((s) => s.name === name)!.stepId;
    const keptId = stepId('kept', await client.getTask(taskId));

    // A commits `committed` but its ack never reaches the worker; then A dies.
    relay.dropReplies();
    release.get('committed')!.resolve();
    await eventually(async () => (await client.getTask(taskId)).steps.find((s) => s.name === 'committed')!.state, (s) => s === 'complete', 'A to commit the result');
    expect(worker.unacknowledgedReports).toBeGreaterThan(0);
    const resumed = once(worker, 'resumed');
    await a.kill();
    relay.retarget(instanceB.port);
    const [info] = (await resumed) as [SessionInfo];
    expect(info).toMatchObject({ sessionId: first.sessionId, resumed: true, serverInstance: 'instance-b', inFlight: [{ stepId: keptId, attempt: 1 }] });
    // The resent report of the committed result is acknowledged by B (duplicate), not refused, not applied again.
    await eventually(() => completed, (c) => c.includes('committed'), "B's ack of the resent result");

    release.get('kept')!.resolve();
    const task = await client.waitForTask(taskId, { timeoutMs: 60_000 });
    expect(task.state).toBe('complete');
    expect(task.results).toEqual({
      first: { finishedOn: 'instance-a-resume', attempt: 1 },
      kept: { finishedOn: 'instance-b', attempt: 1 },
      committed: { finishedOn: 'instance-a-resume', attempt: 1 },
      after: { finishedOn: 'instance-b', attempt: 1 },
    });
    expect(runs.map((r) => [r.step, r.attempt, r.startedOn]).sort()).toEqual([
      ['after', 1, 'instance-b'],
      ['committed', 1, 'instance-a-resume'],
      ['first', 1, 'instance-a-resume'],
      ['kept', 1, 'instance-a-resume'],
    ]);
    expect(task.steps.map((s) => s.attempts)).toEqual([1, 1, 1, 1]);
    for (const [name, audit] of await audits(task)) {
      expect(audit.filter((t) => t.toState === 'complete'), `completions of ${name}`).toHaveLength(1);
      expect(audit.filter((t) => t.toState === 'waiting_for_retry'), `retries of ${name}`).toEqual([]);
    }
    await eventually(() => worker.unacknowledgedReports, (n) => n === 0, 'every report acknowledged');
    expect(errors).toEqual([]);
    expect(completed.sort()).toEqual(['after', 'committed', 'first', 'kept']);
    const sessions = await admin.listWorkers({ handler: 'hop.work' });
    expect(sessions).toEqual([expect.objectContaining({ sessionId: first.sessionId, serverInstance: 'instance-b', connected: true })]);
  });
});
