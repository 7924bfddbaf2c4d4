import { describe, expect, it } from 'vitest';
import { ancestorsOf, findCycle, findCycles, roots, topologicalOrder, type DagNode } from '../../src/domain/dag.js';
import { ValidationError } from '../../src/domain/errors.js';

/** Builds nodes from `name: dep,dep` specs. */
function dag(...specs: string[]): DagNode[] {
  return specs.map((spec) => {
    const [name, deps = ''] = spec.split(':').map((s) => s.trim());
    return { name: name!, dependsOn: deps === '' ? [] : deps.split(',').map((d) => d.trim()) };
  });
}

function thrown(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('topologicalOrder', () => {
  it.each([
    { name: 'single step', steps: dag('a'), order: ['a'] },
    { name: 'chain declared in order', steps: dag('a', 'b: a', 'c: b', 'd: c'), order: ['a', 'b', 'c', 'd'] },
    { name: 'chain declared backwards', steps: dag('d: c', 'c: b', 'b: a', 'a'), order: ['a', 'b', 'c', 'd'] },
    { name: 'diamond', steps: dag('start', 'left: start', 'right: start', 'merge: left, right'), order: ['start', 'left', 'right', 'merge'] },
    { name: 'independent roots keep declaration order', steps: dag('z', 'y', 'x'), order: ['z', 'y', 'x'] },
    {
      name: 'ties broken by declaration order, not by discovery',
      steps: dag('a', 'late: a', 'b', 'c: b'),
      order: ['a', 'late', 'b', 'c'],
    },
    { name: 'duplicate dependency entries count once', steps: dag('a', 'b: a, a'), order: ['a', 'b'] },
  ])('$name', ({ steps, order }) => {
    expect(topologicalOrder(steps)).toEqual(order);
  });

  it('every step comes after its parents in a shuffled DAG', () => {
    const steps = dag('e: c, d', 'b: a', 'd: b', 'a', 'c: a, b', 'f: e, a');
    const order = topologicalOrder(steps);
    const position = new Map(order.map((n, i) => [n, i]));
    for (const s of steps) for (const d of s.dependsOn) expect(position.get(d)!).toBeLessThan(position.get(s.name)!);
    expect(order).toHaveLength(steps.length);
  });

  it.each([
    { name: 'self-dependency', steps: dag('a: a'), message: 'cycle: a -> a' },
    { name: 'two-step cycle', steps: dag('a: b', 'b: a'), message: 'cycle: a -> b -> a' },
    { name: 'three-step cycle', steps: dag('root', 'a: root, c', 'b: a', 'c: b'), message: 'cycle: a -> b -> c -> a' },
  ])('throws on a $name', ({ steps, message }) => {
    const err = thrown(() => topologicalOrder(steps));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.violations).toEqual([{ path: '/steps', message }]);
  });

  it('throws on unknown dependencies and duplicate names', () => {
    const err = thrown(() => topologicalOrder(dag('a', 'a', 'ship: pack')));
    expect(err.violations).toEqual([
      { path: '/steps/1/name', message: "duplicate step name 'a'" },
      { path: '/steps/2/depends_on/0', message: "step 'ship' depends on unknown step 'pack'" },
    ]);
  });
});

describe('findCycle / findCycles', () => {
  it.each([
    { name: 'acyclic', steps: dag('a', 'b: a', 'c: a, b'), cycle: null },
    { name: 'length 1 (self-dependency)', steps: dag('a', 'b: a, b'), cycle: ['b', 'b'] },
    { name: 'length 2', steps: dag('a: b', 'b: a'), cycle: ['a', 'b', 'a'] },
    { name: 'length 3', steps: dag('a: c', 'b: a', 'c: b'), cycle: ['a', 'b', 'c', 'a'] },
    { name: 'length 4, declared out of order', steps: dag('c: b', 'a: d', 'b: a', 'd: c'), cycle: ['c', 'd', 'a', 'b', 'c'] },
    { name: 'the shortest cycle through the first member', steps: dag('a: c, b', 'b: a', 'c: b'), cycle: ['a', 'b', 'a'] },
    { name: 'cycle downstream of a root', steps: dag('root', 'x: root, y', 'y: x'), cycle: ['x', 'y', 'x'] },
    { name: 'unknown dependencies ignored', steps: dag('a: ghost'), cycle: null },
  ])('$name', ({ steps, cycle }) => {
    expect(findCycle(steps)).toEqual(cycle);
  });

  it('reports one cycle per strongly connected component, ordered by first member', () => {
    const steps = dag('p: q', 'a: a', 'q: p', 'x: z', 'y: x', 'z: y', 'free');
    expect(findCycles(steps)).toEqual([
      ['p', 'q', 'p'],
      ['a', 'a'],
      ['x', 'y', 'z', 'x'],
    ]);
  });
});

describe('ancestorsOf', () => {
  const steps = dag('init', 'a: init', 'b: init', 'c: b', 'd: a, b', 'e: c', 'f: d, c, e', 'lone');

  it.each([
    { step: 'init', ancestors: [] },
    { step: 'a', ancestors: ['init'] },
    { step: 'c', ancestors: ['init', 'b'] },
    { step: 'f', ancestors: ['init', 'a', 'b', 'c', 'd', 'e'] },
    { step: 'lone', ancestors: [] },
  ])('of $step', ({ step, ancestors }) => {
    expect([...ancestorsOf(step, steps)]).toEqual(ancestors);
  });

  it('throws for an unknown step', () => {
    expect(() => ancestorsOf('nope', steps)).toThrow(RangeError);
  });
});

describe('roots', () => {
  it('lists steps without dependencies in declaration order', () => {
    expect(roots(dag('b', 'x: b', 'a', 'y: a, b'))).toEqual(['b', 'a']);
  });
});

describe('10,000 steps', () => {
  const n = 10_000;
  const chain = Array.from({ length: n }, (_, i): DagNode => ({ name: `s${i}`, dependsOn: i === 0 ? [] : [`s${i - 1}`] }));

  it('sorts, finds no cycle and walks ancestors of a long chain without deep recursion', () => {
    const reversed = [...chain].reverse();
    const order = topologicalOrder(reversed);
    expect(order[0]).toBe('s0');
    expect(order[n - 1]).toBe(`s${n - 1}`);
    expect(findCycle(chain)).toBeNull();
    expect(ancestorsOf(`s${n - 1}`, chain).size).toBe(n - 1);
    expect(roots(chain)).toEqual(['s0']);
  });

  it('finds a cycle as long as the whole chain', () => {
    const cyclic = [{ name: 's0', dependsOn: [`s${n - 1}`] }, ...chain.slice(1)];
    const cycle = findCycle(cyclic)!;
    expect(cycle).toHaveLength(n + 1);
    expect(cycle[0]).toBe('s0');
    expect(cycle[1]).toBe('s1');
    expect(cycle[n]).toBe('s0');
  });

  it('sorts a wide fan-out / fan-in', () => {
    const wide: DagNode[] = [
      { name: 'start', dependsOn: [] },
      ...Array.from({ length: n - 2 }, (_, i) => ({ name: `w${i}`, dependsOn: ['start'] })),
      { name: 'end', dependsOn: Array.from({ length: n - 2 }, (_, i) => `w${i}`) },
    ];
    const order = topologicalOrder(wide);
    expect(order[0]).toBe('start');
    expect(order[1]).toBe('w0');
    expect(order[n - 1]).toBe('end');
    expect(ancestorsOf('end', wide).size).toBe(n - 1);
  });
});
