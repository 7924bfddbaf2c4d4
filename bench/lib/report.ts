/**
 * What a scenario reports, how it is printed (a plain table), and the result file
 * `bench/results/<timestamp>-<scenario>.json` with the machine, versions, settings
 * and sizes next to the figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { StackExtras } from './stack.js';

/** One measured figure. */
export interface Figure {
  readonly name: string;
  readonly value: number | string | null;
  readonly unit?: string;
}

/** A target from the issue, and whether this run met it. */
export interface TargetCheck {
  readonly target: string;
  readonly measured: number | null;
  readonly unit: string;
  readonly met: boolean | null;
}

/** What a scenario returns. */
export interface ScenarioResult {
  readonly scenario: string;
  readonly sizes: Readonly<Record<string, number | string>>;
  readonly figures: readonly Figure[];
  readonly targets: readonly TargetCheck[];
  readonly notes: readonly string[];
  /** Distributions, per-phase breakdowns, statement statistics: everything that is not a headline figure. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** A target check: `measured` against `limit`, met when at or below (`max`) or at or above (`min`). */
export function checkTarget(target: string, measured: number | null, unit: string, limit: number, kind: 'max' | 'min'): TargetCheck {
  const met = measured === null ? null : kind === 'max' ? measured <= limit : measured >= limit;
  return { target, measured, unit, met };
}

function formatValue(value: number | string | null): string {
  if (value === null) return 'n/a';
  if (typeof value === 'string') return value;
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return String(Math.round(value * 100) / 100);
}

/** The result as a plain-text table (figures, then targets, then notes). */
export function formatResult(result: ScenarioResult): string {
  const rows = result.figures.map((f) => [f.name, `${formatValue(f.value)}${f.unit ? ` ${f.unit}` : ''}`]);
  const width = Math.max(10, ...rows.map((r) => (r[0] ?? '').length));
  const lines = [`== ${result.scenario} (${Object.entries(result.sizes).map(([k, v]) => `${k}=${v}`).join(', ')})`];
  for (const [name, value] of rows) lines.push(`  ${(name ?? '').padEnd(width)}  ${value}`);
  for (const t of result.targets) {
    const verdict = t.met === null ? 'NOT MEASURED' : t.met ? 'met' : 'MISSED';
    lines.push(`  target ${t.target}: ${formatValue(t.measured)} ${t.unit} -> ${verdict}`);
  }
  for (const n of result.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

/** The machine and software a result was measured on. */
export interface Environment {
  readonly date: string;
  /** Which engine code was measured (commit, or snapshot description). */
  readonly source: string;
  readonly machine: { cores: number; cpuModel: string; memoryGiB: number };
  readonly node: string;
  readonly postgres: { version: string; description: string; settings: Record<string, string> };
}

/** The machine facts of this host. */
export function machineInfo(): Environment['machine'] {
  const list = cpus();
  return { cores: list.length, cpuModel: list[0]?.model ?? 'unknown', memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10 };
}

/** Writes `bench/results/<runId>-<scenario>.json`; returns its path. */
export function writeResult(
  resultsDir: string,
  runId: string,
  environment: Environment,
  options: unknown,
  result: ScenarioResult,
  extras: StackExtras,
): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${runId}-${result.scenario}.json`);
  const body = {
    ...environment,
    scenario: result.scenario,
    options,
    sizes: result.sizes,
    figures: result.figures,
    targets: result.targets,
    notes: result.notes,
    serverEnv: extras.serverEnv,
    loadAverage: extras.loadAverage,
    details: result.details,
    serverProfile: extras.profile,
    plans: extras.plans,
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}
