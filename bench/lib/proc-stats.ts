/**
 * CPU time and memory of processes, read from /proc (Linux). CPU is utime + stime
 * in clock ticks (USER_HZ, 100 on Linux) converted to milliseconds; for PostgreSQL
 * it is the postmaster's own and reaped children's time plus every live backend's,
 * so backends that exit during a measurement are still counted.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc times are in 1/100 s on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

interface StatFields {
  readonly ppid: number;
  readonly utime: number;
  readonly stime: number;
  readonly cutime: number;
  readonly cstime: number;
}

function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is parenthesised and may hold spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const field = (n: number) => Number(rest[n - 3]);
  return { ppid: field(4), utime: field(14), stime: field(15), cutime: field(16), cstime: field(17) };
}

const ticksToMs = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;

/** CPU milliseconds (user + system) used so far by `pid`, or null when it is gone. */
export function processCpuMs(pid: number): number | null {
  const stat = readStat(pid);
  return stat ? ticksToMs(stat.utime + stat.stime) : null;
}

/** Pids of the live children of `parent`. */
export function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (readStat(pid)?.ppid === parent) pids.push(pid);
  }
  return pids;
}

/**
 * CPU milliseconds used so far by a PostgreSQL cluster: the postmaster (with the
 * time of children it has reaped) and every live child process.
 */
export function clusterCpuMs(postmasterPid: number): number | null {
  const main = readStat(postmasterPid);
  if (!main) return null;
  let ticks = main.utime + main.stime + main.cutime + main.cstime;
  for (const pid of childPids(postmasterPid)) {
    const s = readStat(pid);
    if (s) ticks += s.utime + s.stime;
  }
  return ticksToMs(ticks);
}

/** Resident set size of `pid` in MiB (VmRSS), or null when it is gone. */
export function rssMiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Peak resident set size of `pid` in MiB (VmHWM), or null when it is gone. */
export function peakRssMiB(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Something whose CPU use can be read: one process, or a PostgreSQL cluster. */
export type CpuSource =
  | { readonly kind: 'process'; readonly pid: number }
  | { readonly kind: 'processes'; readonly pids: readonly number[] }
  | { readonly kind: 'cluster'; readonly postmasterPid: number };

function readCpu(source: CpuSource): number | null {
  switch (source.kind) {
    case 'process':
      return processCpuMs(source.pid);
    case 'cluster':
      return clusterCpuMs(source.postmasterPid);
    case 'processes': {
      let total = 0;
      for (const pid of source.pids) {
        const ms = processCpuMs(pid);
        if (ms === null) return null;
        total += ms;
      }
      return total;
    }
  }
}

/** CPU used over a window, and what it means against the wall time. */
export interface CpuWindow {
  /** CPU milliseconds (user + system) in the window; null when not measurable. */
  readonly cpuMs: number | null;
  /** cpuMs / wall ms * 100: 100 = one core busy the whole time. */
  readonly percentOfCore: number | null;
}

/** Starts measuring `sources`; `end(wallMs)` returns each one's CPU over the window. */
export function startCpuWindow<K extends string>(sources: Readonly<Record<K, CpuSource | null>>): { end(wallMs: number): Record<K, CpuWindow> } {
  const before = new Map<K, number | null>();
  for (const key of Object.keys(sources) as K[]) {
    const s = sources[key];
    before.set(key, s ? readCpu(s) : null);
  }
  return {
    end(wallMs: number) {
      const out = {} as Record<K, CpuWindow>;
      for (const key of Object.keys(sources) as K[]) {
        const s = sources[key];
        const a = before.get(key) ?? null;
        const b = s ? readCpu(s) : null;
        const cpuMs = a === null || b === null ? null : b - a;
        out[key] = { cpuMs, percentOfCore: cpuMs === null || wallMs <= 0 ? null : (cpuMs / wallMs) * 100 };
      }
      return out;
    },
  };
}
