/**
 * Ancestor results: every claimed step is handed the result of each of its ancestors
 * (not only its parents), keyed by step name. The claim statement (`step-claims.ts`)
 * walks the ancestry of the steps it considers ONCE per claim — each ancestor is
 * visited once, however many of the claimed steps share it — and returns that
 * subgraph: the ancestors' names, positions, results and parents. {@link buildAncestorResults} then computes each claimed step's
 * closure in memory and writes its JSON object.
 *
 * Why not the per-step walk in SQL: a recursive query producing (claimed step,
 * ancestor) pairs costs index probes per pair, and siblings repeat the same walk. Deep
 * in a 10,000-step DAG of 90 layers (`bench/`, `dag-scale`) a step has up to 6,756
 * ancestors and the pairs of the whole run add up to 31 M: measured on PostgreSQL 15,
 * that walk took 116 s of a 132 s run (300 claims at 276 ms and 84 at 400 ms). The
 * subgraph walk costs a few index probes per ancestor in the union (≤ 10,000 there),
 * and the pairs are a stamp-array traversal in the server (tens of nanoseconds each).
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';

/**
 * Bytes one ancestor adds to a step's ancestor-results JSON beyond its name and its
 * result text: the quotes around the name, `": "`, and the `", "` that separates
 * entries — the format {@link buildAncestorResults} writes.
 */
export const ANCESTOR_ENTRY_OVERHEAD = 6;

/**
 * The ancestors of the rows of `from` (a relation with `id` and `parent_count`
 * columns), as a relation of step ids: every step on which one of them depends,
 * directly or transitively, once. `union` keeps each step once, so each is expanded
 * once however many of the walked steps share it: one `workflow_step_edges_to_idx`
 * probe per ancestor. The lateral subqueries (`offset 0` keeps them from being
 * flattened into joins) pin the plan to those probes — left to itself the planner
 * estimates the recursion at hundreds of thousands of rows and hash-joins whole
 * tables. The estimates would also trigger JIT, which Tasker's pool turns off
 * (`postgres-database.ts`), and they must not reach a join with a table: the claim
 * statement hands what follows the walk on as arrays. For a subquery in a claim
 * statement: `from` is SQL.
 */
export function ancestorIds(from: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`
    select id from (
      with recursive w(id) as (
        select e.from_step_id
        from ${from} c
        cross join lateral (select from_step_id from workflow_step_edges where to_step_id = c.id offset 0) e
        where c.parent_count > 0
        union
        select e.from_step_id
        from w
        cross join lateral (select from_step_id from workflow_step_edges where to_step_id = w.id offset 0) e
      )
      select id from w
    ) walked`;
}

/** The parents of step `id` (an SQL expression) as comma-separated text; null for a root. */
export function parentList(id: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`(select string_agg(e.from_step_id::text, ',') from workflow_step_edges e where e.to_step_id = ${id})`;
}

/** One step of an ancestral subgraph, as the claim statement returns it. */
export interface AncestorNode {
  readonly id: string;
  readonly taskId: string;
  readonly name: string;
  /** Position of the step in its template: the order of the keys in the JSON. */
  readonly position: number;
  /** The result as JSON text; null when the step has none (resolved manually). */
  readonly resultJson: string | null;
  /** Ids of its parents (empty for a root). */
  readonly parents: readonly string[];
}

/** A step whose ancestor results to build: its task and its parents. */
export interface AncestorRequest {
  readonly id: string;
  readonly taskId: string;
  readonly parents: readonly string[];
}

interface Slot {
  readonly node: AncestorNode;
  /** `"name": result`, written once per claim however many steps include it. */
  entry: string | null;
  /** The last request that reached it (see {@link buildAncestorResults}). */
  stamp: number;
  readonly parents: Slot[];
}

/**
 * The ancestor results of each request, as JSON object text
 * `{"<step name>": <result>, ...}` keyed by request id: every ancestor in the
 * template's step order, with `null` for an ancestor without a result; `{}` for a
 * step without parents. `nodes` must hold every ancestor of every request (the claim
 * statement's subgraph); a parent missing from it is a bug and throws. The format is
 * the claim statement's own for a task it assembles whole: `"name": result` entries
 * joined by `, `.
 *
 * Each request is a depth-first walk marking the slots it reaches with its own stamp,
 * then one pass over its task's slots in position order — no per-step sets or sorts.
 * The work is the number of (step, ancestor) pairs plus the task's subgraph per step,
 * and each entry's text is built once per call.
 */
export function buildAncestorResults(
  requests: readonly AncestorRequest[],
  nodes: readonly AncestorNode[],
): Map<string, string> {
  const out = new Map<string, string>();
  const slots = new Map<string, Slot>();
  for (const node of nodes) slots.set(node.id, { node, entry: null, stamp: 0, parents: [] });
  const byTask = new Map<string, Slot[]>();
  for (const slot of slots.values()) {
    for (const parent of slot.node.parents) (slot.parents as Slot[]).push(slotOf(slots, parent));
    const list = byTask.get(slot.node.taskId);
    if (list) list.push(slot);
    else byTask.set(slot.node.taskId, [slot]);
  }
  for (const list of byTask.values()) list.sort((a, b) => a.node.position - b.node.position);
  let stamp = 0;
  const stack: Slot[] = [];
  for (const request of requests) {
    if (request.parents.length === 0) {
      out.set(request.id, '{}');
      continue;
    }
    stamp += 1;
    for (const parent of request.parents) stack.push(slotOf(slots, parent));
    while (stack.length > 0) {
      const slot = stack.pop() as Slot;
      if (slot.stamp === stamp) continue;
      slot.stamp = stamp;
      for (const parent of slot.parents) if (parent.stamp !== stamp) stack.push(parent);
    }
    const entries: string[] = [];
    for (const slot of byTask.get(request.taskId) ?? []) {
      if (slot.stamp !== stamp) continue;
      slot.entry ??= `${JSON.stringify(slot.node.name)}: ${slot.node.resultJson ?? 'null'}`;
      entries.push(slot.entry);
    }
    out.set(request.id, `{${entries.join(', ')}}`);
  }
  return out;
}

function slotOf(slots: ReadonlyMap<string, Slot>, id: string): Slot {
  const slot = slots.get(id);
  if (!slot) throw new Error(`ancestor ${id} missing from the claimed steps' subgraph`);
  return slot;
}
