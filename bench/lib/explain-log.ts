/**
 * Plans of the SQL the server actually runs, with `EXPLAIN (ANALYZE, BUFFERS)`
 * detail: auto_explain (preloaded by the throwaway cluster, silent by default) is
 * switched on for one bench database, so every statement any connection runs there
 * logs its executed plan with timings and buffer counts. The log is then read back,
 * statements grouped by what they are (claim, outcome apply, ...), and for the ones
 * that took the most time the plan of a median run is kept.
 *
 * Logging every plan slows the run down: figures of a `--explain` run are for
 * reading plans, not for the results table.
 */
import { readFileSync, statSync } from 'node:fs';
import type pg from 'pg';
import { round } from './stats.js';

/** Database-level settings that make auto_explain log every statement's executed plan. */
export async function enableAutoExplain(admin: pg.Client, database: string): Promise<void> {
  const settings: Record<string, string> = {
    'auto_explain.log_min_duration': '0',
    'auto_explain.log_analyze': 'on',
    'auto_explain.log_buffers': 'on',
    'auto_explain.log_timing': 'on',
    'auto_explain.log_nested_statements': 'on',
    'auto_explain.log_format': 'text',
  };
  for (const [key, value] of Object.entries(settings)) {
    await admin.query(`ALTER DATABASE "${database}" SET ${key} = '${value}'`);
  }
}

/** Current size of the log: where the plans of what runs next begin. */
export function logOffset(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Known hot statements, by a fragment of their text. */
const KINDS: ReadonlyArray<[label: string, fragment: RegExp]> = [
  ['claim (claimReadySteps)', /with locked as/i],
  ['outcome apply (applyStepChanges)', /update workflow_steps s set state = i\.to_state/i],
  ['task settle (applyTaskChanges)', /update tasks t set state = i\.to_state|moved as \( update tasks/i],
  ['idle poll (readyHandlers)', /where exists \( select 1 from workflow_steps s where s\.handler = h\.handler/i],
  ['lock steps (lockSteps)', /for update of s/i],
  ['tasks with ready pending', /s\.pending_parents = 0\)/i],
  ['task create (insertTaskGraph)', /with task as \( insert into tasks/i],
  ['notify', /pg_notify/i],
];

/** What a statement is: the label of a known hot statement, else the start of its text. */
export function classify(query: string): string {
  for (const [label, fragment] of KINDS) if (fragment.test(query)) return label;
  return query.length > 70 ? `${query.slice(0, 70)}…` : query;
}

/** One statement kind's executed plans. */
export interface PlanGroup {
  readonly statement: string;
  readonly count: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** The plan of the run with the median duration. */
  readonly medianPlan: string[];
}

interface Entry {
  readonly ms: number;
  readonly query: string;
  readonly plan: string[];
}

function parseEntries(text: string): Entry[] {
  const entries: Entry[] = [];
  // Every log record starts with the prefix `%m [%p] `; plan lines follow without it.
  const records = text.split(/\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] )/);
  for (const record of records) {
    const head = /LOG:\s+duration: ([\d.]+) ms\s+plan:\n([\s\S]*)$/.exec(record);
    if (!head) continue;
    const lines = (head[2] ?? '').split('\n');
    const queryLines: string[] = [];
    let i = 0;
    if (/^\s*Query Text:/.test(lines[0] ?? '')) {
      queryLines.push((lines[0] ?? '').replace(/^\s*Query Text:\s*/, ''));
      i = 1;
      // The query text runs on until the first plan line (indented node, e.g. "\tInsert on ..." or "\tCTE ...").
      while (i < lines.length && !/^\t\S/.test(lines[i] ?? '')) queryLines.push(lines[i++] ?? '');
    }
    entries.push({
      ms: Number(head[1]),
      query: queryLines.join(' ').replace(/\s+/g, ' ').trim(),
      plan: lines.slice(i).map((l) => l.replace(/^\t/, '')).filter((l) => l.trim() !== ''),
    });
  }
  return entries;
}

/**
 * The plans logged since `fromOffset`, grouped by statement kind, most total time
 * first; the first `withPlans` groups keep their median plan.
 */
export function collectPlans(logFile: string, fromOffset: number, withPlans = 4): PlanGroup[] {
  const text = readFileSync(logFile).subarray(fromOffset).toString('utf8');
  const groups = new Map<string, Entry[]>();
  for (const entry of parseEntries(text)) {
    const label = classify(entry.query);
    const list = groups.get(label) ?? [];
    list.push(entry);
    groups.set(label, list);
  }
  return [...groups.entries()]
    .map(([statement, list]) => {
      const total = list.reduce((a, e) => a + e.ms, 0);
      const sorted = [...list].sort((a, b) => a.ms - b.ms);
      return {
        statement,
        count: list.length,
        totalMs: round(total, 1) ?? 0,
        meanMs: round(total / list.length, 3) ?? 0,
        maxMs: round(sorted[sorted.length - 1]?.ms ?? 0, 3) ?? 0,
        medianPlan: sorted[Math.floor(sorted.length / 2)]?.plan ?? [],
      };
    })
    .sort((a, b) => b.totalMs - a.totalMs)
    .map((g, i) => (i < withPlans ? g : { ...g, medianPlan: [] }));
}
