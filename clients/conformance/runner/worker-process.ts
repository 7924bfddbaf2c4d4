/**
 * A conformance worker running as its own process (clients/conformance/README.md,
 * "Conformance worker contract"): started with the language's command from the
 * repository root, configured by TASKER_* environment variables, its stdout read as
 * JSON lines (the events), its stderr kept as a tail for failure reports, and stopped
 * with SIGTERM (SIGKILL after a grace period).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Language } from './scenario.js';

/** How a language's conformance worker is started (cwd = repository root). */
export interface WorkerCommand {
  /** The worker program, relative to the repository root. */
  readonly file: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Extra environment variables. */
  readonly env: Readonly<Record<string, string>>;
}

/** The command of each language's conformance worker. */
export const WORKER_COMMANDS: Readonly<Record<Language, WorkerCommand>> = {
  node: { file: 'clients/node/conformance/worker.ts', command: process.execPath, args: ['--import', 'tsx', 'clients/node/conformance/worker.ts'], env: {} },
  ruby: { file: 'clients/ruby/conformance/worker.rb', command: 'ruby', args: ['-Iclients/ruby/lib', 'clients/ruby/conformance/worker.rb'], env: {} },
  python: { file: 'clients/python/conformance/worker.py', command: '/usr/bin/python3', args: ['clients/python/conformance/worker.py'], env: { PYTHONPATH: 'clients/python', PYTHONUNBUFFERED: '1' } },
};

/** Whether the language's worker program exists in the checkout at `root`. */
export function workerAvailable(root: string, language: Language): boolean {
  return existsSync(join(root, WORKER_COMMANDS[language].file));
}

/** One stdout line of the worker: a JSON object with `event`. */
export interface WorkerEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** What starting a worker needs. */
export interface WorkerProcessOptions {
  readonly root: string;
  readonly language: Language;
  readonly address: string;
  readonly token: string;
  readonly name: string;
  readonly prefix: string;
  readonly concurrency: number;
  /** Lines of stderr kept for failure reports. */
  readonly stderrLines?: number;
}

/** How the process ended. */
export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when SIGTERM was not enough and SIGKILL was sent. */
  readonly killed: boolean;
}

/** A running conformance worker. */
export class WorkerProcess {
  /** Every event line, in order. */
  readonly events: WorkerEvent[] = [];
  /** Stdout lines that were not JSON event objects (a contract violation, kept for the report). */
  readonly strayStdout: string[] = [];
  readonly #stderr: string[] = [];
  readonly #stderrLimit: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<WorkerExit>;
  #waiters: Array<() => void> = [];
  #exit: WorkerExit | null = null;
  #killed = false;

  constructor(options: WorkerProcessOptions) {
    const cmd = WORKER_COMMANDS[options.language];
    this.#stderrLimit = options.stderrLines ?? 80;
    this.#child = spawn(cmd.command, [...cmd.args], {
      cwd: options.root,
      env: {
        ...process.env,
        ...cmd.env,
        TASKER_ADDRESS: options.address,
        TASKER_TOKEN: options.token,
        TASKER_WORKER_NAME: options.name,
        TASKER_HANDLER_PREFIX: options.prefix,
        TASKER_CONCURRENCY: String(options.concurrency),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#onStdout(line));
    createInterface({ input: this.#child.stderr! }).on('line', (line) => {
      this.#stderr.push(line);
      if (this.#stderr.length > this.#stderrLimit) this.#stderr.shift();
    });
    this.#exited = new Promise<WorkerExit>((resolve) => {
      this.#child.on('error', (err) => {
        this.#stderr.push(`spawn failed: ${err.message}`);
        this.#exit = { code: null, signal: null, killed: false };
        this.#wake();
        resolve(this.#exit);
      });
      this.#child.on('exit', (code, signal) => {
        this.#exit = { code, signal, killed: this.#killed };
        this.#wake();
        resolve(this.#exit);
      });
    });
  }

  #onStdout(line: string): void {
    if (line.trim() === '') return;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { event?: unknown }).event === 'string') {
        this.events.push(parsed as WorkerEvent);
        this.#wake();
        return;
      }
    } catch {
      // not JSON: kept below
    }
    this.strayStdout.push(line);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The process id (for the report). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Null while running. */
  get exit(): WorkerExit | null {
    return this.#exit;
  }

  /** The last stderr lines. */
  stderrTail(lines = 40): string {
    return this.#stderr.slice(-lines).join('\n');
  }

  /**
   * Resolves with the first event at index `from` or later that `accept` takes; rejects
   * after `timeoutMs` or when the process exits first.
   */
  async waitForEvent(accept: (e: WorkerEvent) => boolean, options: { from?: number; timeoutMs?: number; what?: string } = {}): Promise<WorkerEvent> {
    const from = options.from ?? 0;
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      const found = this.events.slice(from).find(accept);
      if (found) return found;
      if (this.#exit) throw new Error(`the worker exited (${JSON.stringify(this.#exit)}) before ${options.what ?? 'the expected event'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${options.what ?? 'a worker event'}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** SIGTERM, then SIGKILL when the process is still running after `graceMs`. */
  async stop(graceMs = 15_000): Promise<WorkerExit> {
    if (this.#exit) return this.#exit;
    this.#child.kill('SIGTERM');
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
