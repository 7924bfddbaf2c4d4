/**
 * What a set of objects added to the server's JavaScript heap: two V8 heap snapshots
 * (`node --heapsnapshot-signal`, taken by `ServerProcess.heapSnapshot`) compared by
 * constructor — how many objects of each kind, and their own (shallow) bytes. Used by
 * `sessions --heap` to see what one attached session costs.
 */
import { readFileSync } from 'node:fs';

/** One kind of object and how it changed between two snapshots. */
export interface HeapGrowthEntry {
  /** Constructor name; `(array)`, `(string)`, `(code)`... for V8's internal kinds; `closure <name>` for functions. */
  readonly name: string;
  readonly count: number;
  readonly bytes: number;
}

/** {@link heapGrowth}'s answer. */
export interface HeapGrowth {
  readonly beforeBytes: number;
  readonly afterBytes: number;
  /** The kinds that grew the most, largest first. */
  readonly top: readonly HeapGrowthEntry[];
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function tally(file: string): { total: number; byName: Map<string, [number, number]> } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [ti, ni, si, width] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size'), fields.length];
  const byName = new Map<string, [number, number]>();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + ti] as number] as string;
    const raw = s.strings[s.nodes[i + ni] as number] ?? '';
    const name = type === 'object' ? raw.slice(0, 60) : type === 'closure' ? `closure ${raw.slice(0, 50)}` : `(${type})`;
    const size = s.nodes[i + si] as number;
    const entry = byName.get(name) ?? [0, 0];
    entry[0] += 1;
    entry[1] += size;
    byName.set(name, entry);
    total += size;
  }
  return { total, byName };
}

/** The heap growth from snapshot `before` to snapshot `after`, with the `top` kinds that grew most. */
export function heapGrowth(before: string, after: string, top = 25): HeapGrowth {
  const a = tally(before);
  const b = tally(after);
  const entries: HeapGrowthEntry[] = [];
  for (const [name, [count, bytes]] of b.byName) {
    const [c0, b0] = a.byName.get(name) ?? [0, 0];
    entries.push({ name, count: count - c0, bytes: bytes - b0 });
  }
  entries.sort((x, y) => y.bytes - x.bytes);
  return { beforeBytes: a.total, afterBytes: b.total, top: entries.slice(0, top) };
}
