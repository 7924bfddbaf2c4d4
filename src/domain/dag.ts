/**
 * Graph algorithms over a template's steps. An edge runs from a parent to the step
 * that depends on it, so paths read in execution order (`a -> b`: b depends on a).
 *
 * Every function is iterative (no recursion, so a 10,000-step chain cannot overflow
 * the stack) and runs in O(V + E), except `topologicalOrder`, whose declaration-order
 * tie-breaking costs O((V + E) log V).
 */
import { ValidationError, type Violation } from './errors.js';
import { TEMPLATE_INVALID } from './template.js';

/** What the graph functions need to know about a step. */
export interface DagNode {
  readonly name: string;
  readonly dependsOn: readonly string[];
}

/** The steps as integer adjacency lists; duplicate names resolve to their first declaration. */
interface IndexedDag {
  readonly index: ReadonlyMap<string, number>;
  /** children[i]: steps depending on step i, in declaration order, without duplicates. */
  readonly children: readonly number[][];
  /** parentCount[i]: distinct known parents of step i. */
  readonly parentCount: Int32Array;
  readonly selfLoop: Uint8Array;
}

function indexDag(steps: readonly DagNode[]): IndexedDag {
  const index = new Map<string, number>();
  steps.forEach((s, i) => {
    if (!index.has(s.name)) index.set(s.name, i);
  });
  const children: number[][] = steps.map(() => []);
  const parentCount = new Int32Array(steps.length);
  const selfLoop = new Uint8Array(steps.length);
  steps.forEach((s, i) => {
    if (index.get(s.name) !== i) return;
    const seen = new Set<number>();
    for (const dep of s.dependsOn) {
      const p = index.get(dep);
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      if (p === i) selfLoop[i] = 1;
      children[p]!.push(i);
      parentCount[i]! += 1;
    }
  });
  return { index, children, parentCount, selfLoop };
}

/** Names of the steps with no dependencies, in declaration order. */
export function roots(steps: readonly DagNode[]): string[] {
  return steps.filter((s) => s.dependsOn.length === 0).map((s) => s.name);
}

/**
 * Every step in an order where each comes after all of its parents (Kahn's algorithm).
 * Among steps that are ready at the same time the earliest-declared comes first, so a
 * template declared in dependency order sorts to its own declaration order.
 * Throws ValidationError `TEMPLATE_INVALID` on duplicate names, unknown dependencies
 * or a cycle.
 */
export function topologicalOrder(steps: readonly DagNode[]): string[] {
  const dag = indexDag(steps);
  const problems = structuralProblems(steps, dag.index);
  if (problems.length > 0) {
    throw new ValidationError(`invalid step graph: ${problems[0]!.message}`, problems, TEMPLATE_INVALID);
  }
  const remaining = Int32Array.from(dag.parentCount);
  const heap = new MinHeap();
  for (let i = 0; i < steps.length; i++) if (remaining[i] === 0) heap.push(i);
  const order: string[] = [];
  while (heap.size > 0) {
    const i = heap.pop();
    order.push(steps[i]!.name);
    for (const c of dag.children[i]!) {
      remaining[c]! -= 1;
      if (remaining[c] === 0) heap.push(c);
    }
  }
  if (order.length < steps.length) {
    const message = `cycle: ${(findCycle(steps) ?? []).join(' -> ')}`;
    throw new ValidationError(`invalid step graph: ${message}`, [{ path: '/steps', message }], TEMPLATE_INVALID);
  }
  return order;
}

function structuralProblems(steps: readonly DagNode[], index: ReadonlyMap<string, number>): Violation[] {
  const out: Violation[] = [];
  steps.forEach((s, i) => {
    if (index.get(s.name) !== i) out.push({ path: `/steps/${i}/name`, message: `duplicate step name '${s.name}'` });
    s.dependsOn.forEach((d, j) => {
      if (!index.has(d)) {
        out.push({ path: `/steps/${i}/depends_on/${j}`, message: `step '${s.name}' depends on unknown step '${d}'` });
      }
    });
  });
  return out;
}

/**
 * One cycle of the graph, or null when it is acyclic: the cycle through the
 * earliest-declared step that lies on any cycle, shortest from that step, as a closed
 * path (`['a', 'b', 'c', 'a']`; a self-dependency gives `['a', 'a']`). Unknown
 * dependencies are ignored.
 */
export function findCycle(steps: readonly DagNode[]): string[] | null {
  return findCycles(steps)[0] ?? null;
}

/**
 * One cycle per strongly connected component that has one (self-dependencies
 * included), each as a closed path starting and ending at the component's
 * earliest-declared step, ordered by that step. Empty when the graph is acyclic.
 */
export function findCycles(steps: readonly DagNode[]): string[][] {
  const dag = indexDag(steps);
  const cycles: { start: number; path: string[] }[] = [];
  for (const component of stronglyConnected(dag.children)) {
    let start = component[0]!;
    for (const i of component) if (i < start) start = i;
    if (component.length === 1 && dag.selfLoop[start] !== 1) continue;
    const path = shortestCycleThrough(start, new Set(component), dag.children).map((i) => steps[i]!.name);
    cycles.push({ start, path });
  }
  return cycles.sort((a, b) => a.start - b.start).map((c) => c.path);
}

/** Names of every step `stepName` transitively depends on, in declaration order. Throws RangeError for an unknown step. */
export function ancestorsOf(stepName: string, steps: readonly DagNode[]): Set<string> {
  const dag = indexDag(steps);
  const start = dag.index.get(stepName);
  if (start === undefined) throw new RangeError(`unknown step '${stepName}'`);
  const marked = new Uint8Array(steps.length);
  const queue: number[] = [start];
  for (let head = 0; head < queue.length; head++) {
    for (const dep of steps[queue[head]!]!.dependsOn) {
      const p = dag.index.get(dep);
      if (p === undefined || marked[p] === 1) continue;
      marked[p] = 1;
      queue.push(p);
    }
  }
  const out = new Set<string>();
  for (let i = 0; i < steps.length; i++) if (marked[i] === 1 && i !== start) out.add(steps[i]!.name);
  return out;
}

/** Tarjan's strongly connected components, iteratively. Returns every component. */
function stronglyConnected(children: readonly number[][]): number[][] {
  const n = children.length;
  const order = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const components: number[][] = [];
  const callNode: number[] = [];
  const callEdge: number[] = [];
  let counter = 0;
  const visit = (v: number): void => {
    order[v] = low[v] = counter++;
    stack.push(v);
    onStack[v] = 1;
    callNode.push(v);
    callEdge.push(0);
  };
  for (let s = 0; s < n; s++) {
    if (order[s] !== -1) continue;
    visit(s);
    while (callNode.length > 0) {
      const top = callNode.length - 1;
      const v = callNode[top]!;
      const edges = children[v]!;
      if (callEdge[top]! < edges.length) {
        const w = edges[callEdge[top]!]!;
        callEdge[top]! += 1;
        if (order[w] === -1) visit(w);
        else if (onStack[w] === 1) low[v] = Math.min(low[v]!, order[w]!);
        continue;
      }
      callNode.pop();
      callEdge.pop();
      if (callNode.length > 0) {
        const u = callNode[callNode.length - 1]!;
        low[u] = Math.min(low[u]!, low[v]!);
      }
      if (low[v] === order[v]) {
        const component: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          component.push(w);
        } while (w !== v);
        components.push(component);
      }
    }
  }
  return components;
}

/** Breadth-first search inside one component for the shortest closed path start -> ... -> start. */
function shortestCycleThrough(start: number, members: ReadonlySet<number>, children: readonly number[][]): number[] {
  const previous = new Map<number, number>([[start, -1]]);
  const queue: number[] = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (const w of children[v]!) {
      if (w === start) {
        const path: number[] = [start];
        for (let x = v; x !== -1; x = previous.get(x)!) path.push(x);
        return path.reverse();
      }
      if (!members.has(w) || previous.has(w)) continue;
      previous.set(w, v);
      queue.push(w);
    }
  }
  return [start, start];
}

/** A binary min-heap of step indices. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const a = this.items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= value) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = value;
  }

  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && a[r]! < a[l]! ? r : l;
      if (a[c]! >= last) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
}
