/**
 * Reading a V8 `.cpuprofile` (written by `node --cpu-prof`) into what a reader of the
 * README needs: where the busy time went — by function (self and inclusive time) and
 * by module (a package under node_modules, a file of src/, a Node internal).
 * Idle time (`(idle)`) is counted apart; percentages are of busy time.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from './paths.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function or module's share of the busy time. */
export interface ProfileEntry {
  readonly name: string;
  readonly ms: number;
  /** Percent of busy (non-idle) time. */
  readonly percent: number;
}

/** The summary of one profile. */
export interface ProfileSummary {
  readonly file: string;
  readonly sampledMs: number;
  readonly idleMs: number;
  readonly busyMs: number;
  /** Functions by self time. */
  readonly topSelf: readonly ProfileEntry[];
  /** Functions by inclusive time (each sample counted once per function on its stack). */
  readonly topInclusive: readonly ProfileEntry[];
  /** Self time grouped by module. */
  readonly byModule: readonly ProfileEntry[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  let path = url;
  if (url.startsWith('file://')) {
    try {
      path = fileURLToPath(url);
    } catch {
      return url;
    }
  }
  const rel = relative(repoRoot, path);
  return rel.startsWith('..') ? path : rel;
}

/** Which module a script belongs to: the package under node_modules, the file under src/, or the Node internal. */
function moduleOf(url: string): string {
  const short = shortUrl(url);
  if (!short) return '(native / V8)';
  const nm = short.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = short.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  if (short.startsWith('node:')) return short.split('/').slice(0, 2).join('/');
  return short;
}

function frameKey(node: ProfileNode): string {
  const f = node.callFrame;
  const where = shortUrl(f.url);
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}:${f.lineNumber + 1}` : ''}`;
}

function top(map: Map<string, number>, busyMs: number, limit: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, percent: busyMs > 0 ? Math.round((us / 1000 / busyMs) * 1000) / 10 : 0 }));
}

const SPECIAL_IDLE = '(idle)';

/** Summarizes the profile at `file`: top `limit` functions by self and inclusive time, and modules. */
export function summarizeCpuProfile(file: string, limit = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const modules = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  profile.samples.forEach((sampleId, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const node = byId.get(sampleId);
    if (!node) return;
    totalUs += delta;
    if (node.callFrame.functionName === SPECIAL_IDLE) {
      idleUs += delta;
      return;
    }
    const key = frameKey(node);
    self.set(key, (self.get(key) ?? 0) + delta);
    const mod = node.callFrame.url ? moduleOf(node.callFrame.url) : node.callFrame.functionName || '(native / V8)';
    modules.set(mod, (modules.get(mod) ?? 0) + delta);
    const seen = new Set<string>();
    for (let id: number | undefined = sampleId; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n || n.callFrame.functionName === '(root)') continue;
      const k = frameKey(n);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + delta);
    }
  });
  const busyMs = (totalUs - idleUs) / 1000;
  return {
    file: shortUrl(file),
    sampledMs: Math.round(totalUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    busyMs: Math.round(busyMs),
    topSelf: top(self, busyMs, limit),
    topInclusive: top(inclusive, busyMs, limit),
    byModule: top(modules, busyMs, limit),
  };
}
