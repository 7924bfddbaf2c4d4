/**
 * The server as an operator and a client meet it: `startTasker` on both database
 * backends answers the standard health check and reflection over a real socket,
 * refuses a taken port, and stops cleanly; the handler wrappers authenticate and map
 * errors on the wire; the `tasker` CLI fails with one readable line on bad
 * configuration or an unreachable database, and stops gracefully on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthServiceDefinition } from 'grpc-health-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import type { Config } from '../../src/config/schema.js';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigOverrides } from '../../src/config/load.js';
import { NotFoundError, UnavailableError } from '../../src/domain/errors.js';
import { AdminServiceClient, AdminServiceService } from '../../src/gen/tasker/v1/admin.js';
import type { GetSystemHealthRequest, GetSystemHealthResponse } from '../../src/gen/tasker/v1/admin.js';
import { TaskServiceClient, TaskServiceService } from '../../src/gen/tasker/v1/task.js';
import type { TaskUpdate, WatchTaskRequest } from '../../src/gen/tasker/v1/task.js';
import { createAuthenticator } from '../../src/grpc/auth.js';
import { ERROR_CODE_KEY, ERROR_DETAILS_KEY } from '../../src/grpc/errors.js';
import { createRpcHandlers } from '../../src/grpc/handlers.js';
import { startGrpcServer } from '../../src/grpc/server.js';
import type { ServerTarget } from '../support/databases.js';
import { serverBackends } from '../support/databases.js';
import { repoRoot } from '../support/paths.js';

const silent = pino({ level: 'silent' });

function testConfig(overrides: ConfigOverrides = {}): Config {
  return loadConfig({ env: { TASKER_ENV: 'test' }, overrides: { server: { host: '127.0.0.1', port: 0 }, ...overrides } });
}

const HealthClient = grpc.makeClientConstructor(healthServiceDefinition as grpc.ServiceDefinition, 'grpc.health.v1.Health');

function checkHealth(address: string, service = ''): Promise<string> {
  const client = new HealthClient(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (v: object) => healthServiceDefinition.Check!.requestSerialize(v),
      (b: Buffer) => healthServiceDefinition.Check!.responseDeserialize(b) as { status: string },
      { service },
      { deadline: Date.now() + 5000 },
      (err, res) => (err ? reject(err) : resolve(String(res?.status))),
    );
  }).finally(() => client.close());
}

interface ReflectionResponse {
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_message: string };
}

/** One request on the v1 reflection stream. */
function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const definition = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', {
    includeDirs: [join(repoRoot, 'node_modules/@grpc/reflection/build/proto')],
    keepCase: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  return new Promise<ReflectionResponse>((resolve, reject) => {
    const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse> }).ServerReflectionInfo();
    call.on('data', (res: ReflectionResponse) => {
      resolve(res);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  }).finally(() => client.close());
}

describe.each(serverBackends)('startTasker on $name', (backend) => {
  let tasker: RunningTasker;
  let target: ServerTarget;

  beforeAll(async () => {
    target = await backend.open();
    tasker = await startTasker(testConfig({ database: { url: target.url } }), silent);
  });

  afterAll(async () => {
    await tasker?.stop();
    await target?.close();
  });

  it('listens on a free loopback port and reports SERVING through grpc.health.v1', async () => {
    expect(tasker.address).toBe(`127.0.0.1:${tasker.port}`);
    expect(tasker.port).toBeGreaterThan(0);
    expect(tasker.database.kind).toBe(target.url ? 'postgres' : 'pglite');
    expect(await checkHealth(tasker.address)).toBe('SERVING');
  });

  it('serves reflection listing health and reflection, and describes the tasker.v1 contract', async () => {
    const listed = await reflect(tasker.address, { list_services: '*' });
    const names = listed.list_services_response?.service.map((s) => s.name) ?? [];
    expect(names).toEqual(expect.arrayContaining(['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']));
    const described = await reflect(tasker.address, { file_containing_symbol: 'tasker.v1.TaskService' });
    expect(described.error_response).toBeUndefined();
    expect(described.file_descriptor_response?.file_descriptor_proto.length).toBeGreaterThan(0);
  });

  it('refuses a second server on the same port with ADDRESS_IN_USE naming host:port', async () => {
    const second = startTasker(testConfig({ server: { host: '127.0.0.1', port: tasker.port }, database: { url: target.url } }), silent);
    await expect(second).rejects.toMatchObject({ code: 'ADDRESS_IN_USE', message: expect.stringContaining(`127.0.0.1:${tasker.port}`) });
    expect(await checkHealth(tasker.address)).toBe('SERVING');
  });

  it('stops cleanly: the port is released and the database closed, and stop() is idempotent', async () => {
    await tasker.stop();
    await tasker.stop();
    await expect(checkHealth(tasker.address)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(tasker.database.db.selectNoFrom((eb) => eb.val(1).as('one')).execute()).rejects.toThrow();
  });
});

describe('handler wrappers on the wire', () => {
  const shutdown = new AbortController();
  let server: Awaited<ReturnType<typeof startGrpcServer>>;
  let admin: InstanceType<typeof AdminServiceClient>;
  let tasks: InstanceType<typeof TaskServiceClient>;
  let healthCalls = 0;

  beforeAll(async () => {
    const config = testConfig();
    const handlers = createRpcHandlers({ authenticator: createAuthenticator(config.auth), logger: silent, shutdownSignal: shutdown.signal });
    const adminImpl = {
      getSystemHealth: handlers.unary<GetSystemHealthRequest, GetSystemHealthResponse>('admin', async () => {
        healthCalls += 1;
        if (healthCalls === 2) throw new NotFoundError('task', 'tsk_missing');
        if (healthCalls === 3) throw new Error('pool exhausted at db-7 (password=hunter2)');
        return { health: { taskCounts: { pending: 3 }, stepCounts: {}, readySteps: 1, activeSessions: 0 } };
      }),
    };
    const taskImpl = {
      watchTask: handlers.serverStream<WatchTaskRequest, TaskUpdate>('client', async (_request, ctx) => {
        ctx.authorize('payments');
        await ctx.write({ cursor: 1, at: new Date(0), update: undefined });
        // Runs until the server shuts down: the signal's reason (UNAVAILABLE) becomes the stream's status.
        await new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      }),
    };
    server = await startGrpcServer({
      config,
      logger: silent,
      services: [
        { name: 'tasker.v1.AdminService', definition: AdminServiceService, implementation: adminImpl },
        { name: 'tasker.v1.TaskService', definition: TaskServiceService, implementation: taskImpl },
      ],
    });
    admin = new AdminServiceClient(server.address, grpc.credentials.createInsecure());
    tasks = new TaskServiceClient(server.address, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    admin?.close();
    tasks?.close();
    await server?.shutdown(1000);
  });

  const bearer = (token: string) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    return metadata;
  };
  const getHealth = (metadata: grpc.Metadata) =>
    new Promise<GetSystemHealthResponse>((resolve, reject) =>
      admin.getSystemHealth({}, metadata, (err, res) => (err ? reject(err) : resolve(res))),
    );

  it('refuses a call without a token (UNAUTHENTICATED) and with a lesser role (PERMISSION_DENIED)', async () => {
    await expect(getHealth(new grpc.Metadata())).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(getHealth(bearer('not-a-configured-token'))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const denied = await getHealth(bearer('test-client-token')).catch((e: grpc.ServiceError) => e);
    expect(denied).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((denied as grpc.ServiceError).metadata.get(ERROR_CODE_KEY)).toEqual(['PERMISSION_DENIED']);
    expect(healthCalls).toBe(0);
  });

  it('runs the implementation for the right role and maps its errors', async () => {
    expect((await getHealth(bearer('test-admin-token'))).health?.taskCounts).toEqual({ pending: 3 });
    const notFound = (await getHealth(bearer('test-admin-token')).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(notFound.code).toBe(grpc.status.NOT_FOUND);
    expect(notFound.details).toBe('task tsk_missing not found');
    expect(notFound.metadata.get(ERROR_CODE_KEY)).toEqual(['TASK_NOT_FOUND']);
    expect(JSON.parse(String(notFound.metadata.get(ERROR_DETAILS_KEY)[0]))).toEqual({ kind: 'task', id: 'tsk_missing' });
    const internal = (await getHealth(bearer('test-admin-token')).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(internal.code).toBe(grpc.status.INTERNAL);
    expect(internal.details).toBe('internal error');
    expect(JSON.stringify(internal.metadata.getMap())).not.toContain('hunter2');
  });

  it('streams to a client and ends the stream with UNAVAILABLE when the server shuts down', async () => {
    const call = tasks.watchTask({ taskId: 'never', skipHistory: false }, bearer('test-client-token'));
    const received: TaskUpdate[] = [];
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    await new Promise<void>((resolve) =>
      call.on('data', (update: TaskUpdate) => {
        received.push(update);
        resolve();
      }),
    );
    expect(received.map((u) => u.cursor)).toEqual([1]);
    shutdown.abort();
    const status = await ended;
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    expect(status.metadata.get(ERROR_CODE_KEY)).toEqual([new UnavailableError('x', 'SERVER_SHUTTING_DOWN').code]);
  });
});

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tsx src/cli/main.ts <args>` with extra env; resolves when it exits. `onStdout` may signal it. */
function runCli(args: string[], env: Record<string, string>, onStdout?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, TASKER_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    onStdout?.(stdout, (signal) => child.kill(signal));
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const STACK_LINE = /^\s+at /m;

describe('tasker CLI', () => {
  it('exits 78 on a bad config value, naming the variable and key path, without a stack trace', async () => {
    const run = await runCli(['serve'], { TASKER_SERVER_PORT: 'eighty' });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('tasker: invalid configuration: TASKER_SERVER_PORT: server.port: expected a number, got "eighty"');
    expect(run.stderr).not.toMatch(STACK_LINE);
  });

  it('exits 1 with one clear line when the database is unreachable', async () => {
    const run = await runCli(['serve'], {
      TASKER_DATABASE_URL: 'postgres://tasker:secret@127.0.0.1:1/tasker',
      TASKER_DATABASE_CONNECT_TIMEOUT_MS: '3000',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tasker: .*127\.0\.0\.1:1/m);
    expect(run.stderr).not.toContain('secret');
    expect(run.stderr).not.toMatch(STACK_LINE);
  });

  it('serves until SIGTERM, then stops gracefully and exits 0', async () => {
    let signalled = false;
    const run = await runCli(['serve'], { TASKER_LOG_LEVEL: 'info' }, (text, kill) => {
      if (!signalled && text.includes('Tasker listening on 127.0.0.1:')) {
        signalled = true;
        kill('SIGTERM');
      }
    });
    expect(signalled).toBe(true);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('"msg":"stopped"');
  });
});
