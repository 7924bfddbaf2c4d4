/**
 * Helpers for the `tasker` CLI e2e tests: a real Tasker on a throwaway PostgreSQL
 * database, and the CLI run as a child process (`node --import tsx src/cli/main.ts`
 * from the repository root, configured with TASKER_ENV=test) whose exit code, stdout
 * and stderr the tests inspect, either to completion or while it runs (`task watch`).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import type { TestDatabase } from '../support/databases.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import { repoRoot } from '../support/paths.js';
import { apiConfig, silent } from './api-client.js';

/** A finished CLI run. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI process still running. */
export interface CliProcess {
  /** Resolves when the process has exited and its output is closed. */
  readonly done: Promise<CliRun>;
  /** Resolves once stdout contains `text`; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Starts `tasker <args>` (TASKER_ENV=test, cwd at the repository root). */
export function spawnTasker(args: readonly string[]): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, TASKER_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  let exited = false;
  const listeners = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    listeners.forEach((l) => l());
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      running.delete(child);
      listeners.forEach((l) => l());
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    waitForOutput(text, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no "${text}" in the output after ${timeoutMs} ms:\n${stdout}${stderr}`)), timeoutMs);
        const check = () => {
          if (stdout.includes(text)) finish(null);
          else if (exited) finish(new Error(`exited without printing "${text}":\n${stdout}${stderr}`));
        };
        function finish(err: Error | null) {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        }
        listeners.add(check);
        check();
      });
    },
  };
}

/** Runs `tasker <args>` to completion. */
export function tasker(...args: string[]): Promise<CliRun> {
  return spawnTasker(args).done;
}

/** Kills the CLI processes a test left running (a failed watch). */
export function killStrayProcesses(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** The lines of `text`, without the trailing empty one. */
export const lines = (text: string): string[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

/** Every stdout line parsed as JSON (each must be a JSON document). */
export function jsonLines(run: CliRun): Array<Record<string, unknown>> {
  return lines(run.stdout).map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The single JSON document on stdout. */
export function json(run: CliRun): Record<string, unknown> {
  const all = jsonLines(run);
  expect(all).toHaveLength(1);
  return all[0] as Record<string, unknown>;
}

const STACK_LINE = /^\s+at /m;

/** The run succeeded with nothing on stderr. */
export function expectOk(run: CliRun): void {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
}

/** The run failed with `code` and one `tasker: ...` line (plus a usage hint for 64) and no stack trace. */
export function expectFailure(run: CliRun, code: number, message: string | RegExp): void {
  expect(run.code).toBe(code);
  expect(run.stderr).not.toMatch(STACK_LINE);
  const [first, ...rest] = lines(run.stderr);
  expect(first).toMatch(/^tasker: /);
  expect(first).toMatch(message);
  expect(rest).toEqual(code === 64 ? ['Run "tasker --help" for usage.'] : []);
}

/** A Tasker on its own PostgreSQL database, with a temporary directory for files. */
export interface CliServer {
  readonly tasker: RunningTasker;
  /** `--address <address>` plus `--token` when given. */
  remote(token?: string): string[];
  /** Writes `text` to `name` in the temporary directory; returns its path. */
  file(name: string, text: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a Tasker for CLI tests: auth with the test tokens, quick heartbeats and polls for SDK workers. */
export async function startCliServer(): Promise<CliServer> {
  const target: TestDatabase = await createPostgresTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'tasker-cli-'));
  const server = await startTasker(
    apiConfig(target.url, {
      workers: { heartbeat_interval_ms: 300, lease_ms: 3_000, session_ttl_ms: 60_000 },
      engine: { poll_interval_ms: 100, reaper_interval_ms: 100 },
    }),
    silent,
  );
  return {
    tasker: server,
    remote: (token) => ['--address', server.address, ...(token === undefined ? [] : ['--token', token])],
    async file(name, text) {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    },
    async close() {
      killStrayProcesses();
      await server.stop();
      await target.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
