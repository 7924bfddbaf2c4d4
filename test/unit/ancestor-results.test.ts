import { describe, expect, test } from 'vitest';
import type { AncestorNode } from '../../src/store/ancestor-results.js';
import { buildAncestorResults } from '../../src/store/ancestor-results.js';

const node = (id: string, position: number, parents: string[], resultJson: string | null, taskId = 't1'): AncestorNode => ({
  id,
  taskId,
  name: id.toLowerCase(),
  position,
  resultJson,
  parents,
});

describe('buildAncestorResults', () => {
  // A diamond A -> B, A -> C, (B, C) -> D, and E below D; F is a second root beside A.
  const nodes = [
    node('A', 0, [], '{"value": 1}'),
    node('F', 1, [], null),
    node('C', 3, ['A'], '"c"'),
    node('B', 2, ['A', 'F'], '[1, 2]'),
    node('D', 4, ['B', 'C'], 'null'),
  ];

  test('every ancestor once, in template order, with null for a step without a result', () => {
    const out = buildAncestorResults([{ id: 'E', taskId: 't1', parents: ['D'] }], nodes);
    const json = out.get('E') as string;
    expect(JSON.parse(json)).toEqual({ a: { value: 1 }, f: null, b: [1, 2], c: 'c', d: null });
    expect(Object.keys(JSON.parse(json))).toEqual(['a', 'f', 'b', 'c', 'd']);
  });

  test('each request gets its own lineage only; a root gets {}', () => {
    const out = buildAncestorResults(
      [
        { id: 'X', taskId: 't1', parents: ['C'] },
        { id: 'Y', taskId: 't1', parents: ['B'] },
        { id: 'R', taskId: 't1', parents: [] },
      ],
      nodes,
    );
    expect(JSON.parse(out.get('X') as string)).toEqual({ a: { value: 1 }, c: 'c' });
    expect(JSON.parse(out.get('Y') as string)).toEqual({ a: { value: 1 }, f: null, b: [1, 2] });
    expect(out.get('R')).toBe('{}');
  });

  test('tasks do not mix, even with equal step names', () => {
    const other = [node('A2', 0, [], '"other"', 't2')];
    const out = buildAncestorResults(
      [
        { id: 'E', taskId: 't1', parents: ['A'] },
        { id: 'E2', taskId: 't2', parents: ['A2'] },
      ],
      [...nodes, { ...other[0]!, name: 'a' }],
    );
    expect(JSON.parse(out.get('E') as string)).toEqual({ a: { value: 1 } });
    expect(JSON.parse(out.get('E2') as string)).toEqual({ a: 'other' });
  });

  test('a parent missing from the subgraph is an error, not a silently smaller result', () => {
    expect(() => buildAncestorResults([{ id: 'E', taskId: 't1', parents: ['Z'] }], nodes)).toThrow(/ancestor Z missing/);
  });
});
