/**
 * The workflow shapes the scenarios run, as template documents (the YAML shape).
 * Every step uses the one no-op handler {@link NOOP_HANDLER}; every template is
 * `always_unique`, since the bench creates many tasks with the same context.
 */

/** A template in the YAML document shape, as `parseTemplateDocument` reads it (defaults left out). */
export interface TemplateDocument {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly identity_strategy: 'always_unique';
  readonly steps: ReadonlyArray<{ readonly name: string; readonly handler: string; readonly depends_on?: readonly string[] }>;
}

/** The handler every bench step uses; the bench workers serve it. */
export const NOOP_HANDLER = 'bench.noop';

interface Shape {
  readonly name: string;
  readonly description: string;
  readonly steps: ReadonlyArray<{ name: string; depends_on?: string[] }>;
}

function document(namespace: string, shape: Shape): TemplateDocument {
  return {
    namespace,
    name: shape.name,
    version: '1.0.0',
    description: shape.description,
    identity_strategy: 'always_unique',
    steps: shape.steps.map((s) => ({ name: s.name, handler: NOOP_HANDLER, ...(s.depends_on?.length ? { depends_on: s.depends_on } : {}) })),
  };
}

/** One step. */
export function singleStep(namespace: string): TemplateDocument {
  return document(namespace, { name: 'single', description: 'one no-op step', steps: [{ name: 'only' }] });
}

/**
 * Ten steps, twelve edges: a fan-out of three, two joins, a second fan-out and a final join.
 *
 *   s1 -> s2, s3, s4;  s5 <- s2, s3;  s6 <- s4;  s7 <- s5, s6;  s8, s9 <- s7;  s10 <- s8, s9
 */
export function dag10(namespace: string): TemplateDocument {
  const steps = [
    { name: 's1' },
    { name: 's2', depends_on: ['s1'] },
    { name: 's3', depends_on: ['s1'] },
    { name: 's4', depends_on: ['s1'] },
    { name: 's5', depends_on: ['s2', 's3'] },
    { name: 's6', depends_on: ['s4'] },
    { name: 's7', depends_on: ['s5', 's6'] },
    { name: 's8', depends_on: ['s7'] },
    { name: 's9', depends_on: ['s7'] },
    { name: 's10', depends_on: ['s8', 's9'] },
  ];
  return document(namespace, { name: 'dag10', description: 'a ten-step DAG with fan-outs and joins', steps });
}

/** `length` steps in a chain: a -> b -> c -> ... */
export function linear(namespace: string, length: number): TemplateDocument {
  const steps = Array.from({ length }, (_, i) => ({ name: `l${i + 1}`, ...(i > 0 ? { depends_on: [`l${i}`] } : {}) }));
  return document(namespace, { name: `linear${length}`, description: `a ${length}-step chain`, steps });
}

/** `width` parallel steps after one root, then one join. */
export function fanOut(namespace: string, width: number): TemplateDocument {
  const parallel = Array.from({ length: width }, (_, i) => ({ name: `p${i + 1}`, depends_on: ['start'] }));
  const steps = [{ name: 'start' }, ...parallel, { name: 'join', depends_on: parallel.map((p) => p.name) }];
  return document(namespace, { name: `fanout${width}`, description: `one root, ${width} parallel steps, one join`, steps });
}

/** A small deterministic PRNG (mulberry32), so a given size always yields the same DAG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A mixed DAG of `size` steps in layers of varying width (about sqrt(size) on
 * average, between a quarter and twice that): every step after the first layer
 * depends on one to three steps of the layer before, and one in five also on a step
 * two layers up — fan-outs, joins and chains together. Deterministic for a size.
 */
export function mixedDag(namespace: string, size: number): { doc: TemplateDocument; edges: number; layers: number } {
  const random = prng(size);
  const mean = Math.max(1, Math.round(Math.sqrt(size)));
  const layers: string[][] = [];
  let made = 0;
  while (made < size) {
    const width = Math.min(size - made, Math.max(1, Math.round(mean * (0.25 + random() * 1.75))));
    layers.push(Array.from({ length: width }, (_, i) => `m${made + i + 1}`));
    made += width;
  }
  const pick = (from: readonly string[]) => from[Math.floor(random() * from.length)] as string;
  const steps: { name: string; depends_on?: string[] }[] = [];
  let edges = 0;
  layers.forEach((layer, li) => {
    for (const name of layer) {
      if (li === 0) {
        steps.push({ name });
        continue;
      }
      const parents = new Set<string>();
      const count = 1 + Math.floor(random() * 3);
      for (let k = 0; k < count; k++) parents.add(pick(layers[li - 1] as string[]));
      if (li >= 2 && random() < 0.2) parents.add(pick(layers[li - 2] as string[]));
      edges += parents.size;
      steps.push({ name, depends_on: [...parents] });
    }
  });
  const doc = document(namespace, { name: `mixed${size}`, description: `a ${size}-step mixed DAG in ${layers.length} layers`, steps });
  return { doc, edges, layers: layers.length };
}
