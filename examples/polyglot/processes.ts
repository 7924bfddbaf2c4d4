/**
 * The polyglot example's three worker processes: how each is started (cwd = the
 * repository root), their output lines handed to a callback, `ready` detected from
 * the `ready <session id>` line each prints once connected, and a graceful stop
 * (SIGTERM, SIGKILL after a grace period).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** The languages of the example, in the order their workers start. */
export const POLYGLOT_LANGUAGES = ['python', 'ruby', 'node'] as const;
/** One language of the example. */
export type PolyglotLanguage = (typeof POLYGLOT_LANGUAGES)[number];

/** Debian's interpreter has the grpcio and protobuf packages the Python SDK needs. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Command, arguments and extra environment of each language's worker. */
export const WORKER_SPECS: Readonly<Record<PolyglotLanguage, { command: string; args: readonly string[]; env: Readonly<Record<string, string>> }>> = {
  python: { command: PYTHON, args: ['examples/polyglot/worker.py'], env: { PYTHONPATH: 'clients/python', PYTHONUNBUFFERED: '1' } },
  ruby: { command: 'ruby', args: ['-Iclients/ruby/lib', 'examples/polyglot/worker.rb'], env: {} },
  node: { command: process.execPath, args: ['--import', 'tsx', 'examples/polyglot/worker.ts'], env: {} },
};

/** One line a worker wrote. */
export interface WorkerLine {
  readonly language: PolyglotLanguage;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

/** What starting a worker needs. */
export interface ExampleWorkerOptions {
  /** The repository root. */
  readonly root: string;
  readonly address: string;
  /** Bearer token with the `worker` role; omitted when the server runs with auth disabled. */
  readonly token?: string;
  /** Sees every output line. */
  readonly onLine?: (line: WorkerLine) => void;
  /** Lines kept for `tail()`. */
  readonly keepLines?: number;
}

/** How a worker process ended. */
export interface ExampleWorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when SIGTERM was not enough. */
  readonly killed: boolean;
}

/** One running example worker. */
export class ExampleWorker {
  readonly language: PolyglotLanguage;
  /** Resolves with the session id once the worker printed `ready`; rejects if it exits first. */
  readonly ready: Promise<string>;
  readonly #child: ChildProcess;
  readonly #exited: Promise<ExampleWorkerExit>;
  readonly #lines: string[] = [];
  #killed = false;

  constructor(language: PolyglotLanguage, options: ExampleWorkerOptions) {
    this.language = language;
    const spec = WORKER_SPECS[language];
    const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env, TASKER_ADDRESS: options.address };
    if (options.token) env.TASKER_TOKEN = options.token;
    else delete env.TASKER_TOKEN;
    this.#child = spawn(spec.command, [...spec.args], { cwd: options.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = options.keepLines ?? 60;
    let onReady: (sessionId: string) => void = () => {};
    let onEarlyExit: (err: Error) => void = () => {};
    this.ready = new Promise<string>((resolve, reject) => {
      onReady = resolve;
      onEarlyExit = reject;
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: this.#child[stream]! }).on('line', (text) => {
        this.#lines.push(`${stream}: ${text}`);
        if (this.#lines.length > keep) this.#lines.shift();
        if (stream === 'stdout' && text.startsWith('ready ')) onReady(text.slice('ready '.length));
        options.onLine?.({ language, stream, text });
      });
    }
    this.#exited = new Promise<ExampleWorkerExit>((resolve) => {
      this.#child.on('error', (err) => {
        onEarlyExit(new Error(`${language} worker could not start (${spec.command}): ${err.message}`));
        resolve({ code: null, signal: null, killed: false });
      });
      this.#child.on('exit', (code, signal) => {
        onEarlyExit(new Error(`${language} worker exited (code ${code}, signal ${signal}) before it was ready`));
        resolve({ code, signal, killed: this.#killed });
      });
    });
    this.ready.catch(() => undefined); // observed by whoever awaits it
  }

  /** The last output lines, for error reports. */
  tail(): string {
    return this.#lines.join('\n');
  }

  /** SIGTERM, then SIGKILL when it is still running after `graceMs`. */
  async stop(graceMs = 10_000): Promise<ExampleWorkerExit> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.#killed = true;
      this.#child.kill('SIGKILL');
    }, graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Starts one worker per language and waits until each is connected; stops them all if one fails. */
export async function startPolyglotWorkers(options: ExampleWorkerOptions, readyTimeoutMs = 60_000): Promise<ExampleWorker[]> {
  const workers = POLYGLOT_LANGUAGES.map((language) => new ExampleWorker(language, options));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the workers were not all ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
  });
  try {
    await Promise.race([Promise.all(workers.map((w) => w.ready)), timeout]);
    return workers;
  } catch (err) {
    await Promise.all(workers.map((w) => w.stop(2_000)));
    const tails = workers.map((w) => `--- ${w.language} ---\n${w.tail()}`).join('\n');
    throw new Error(`${(err as Error).message}\n${tails}`);
  } finally {
    clearTimeout(timer);
  }
}
