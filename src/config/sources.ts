/**
 * The layers a configuration is merged from: YAML files and `TASKER_*` environment
 * variables. Each layer is a plain object plus a label (the file or the variable)
 * that error messages name. Problems are collected, not thrown, so one run reports
 * every mistake at once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ConfigLeaf } from './keys.js';
import { configKeys } from './keys.js';

/** A plain JSON-like mapping. */
export type Mapping = Record<string, unknown>;

/** One layer of configuration; `labelOf` names where the value at a key path came from. */
export interface ConfigLayer {
  readonly data: Mapping;
  /** Dotted key path → label (the file, or the variable that set that key). */
  readonly labelOf: (path: string) => string;
}

/** Whether `value` is a plain mapping (not an array, not null). */
export function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads one YAML file as a layer. A missing file is a problem only when `required`;
 * otherwise it yields null. An empty file is an empty mapping.
 */
export function readYamlLayer(file: string, label: string, required: boolean, problems: string[]): ConfigLayer | null {
  if (!existsSync(file)) {
    if (required) problems.push(`${label}: expected a readable YAML file, got no file at ${file}`);
    return null;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${label}: expected a readable YAML file, got ${(err as Error).message}`);
    return null;
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) problems.push(`${label}: invalid YAML: ${error.message.split('\n')[0]}`);
    return null;
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return { data: {}, labelOf: () => label };
  if (!isMapping(data)) {
    problems.push(`${label}: expected a mapping of keys at the top level, got ${Array.isArray(data) ? 'a list' : typeof data}`);
    return null;
  }
  return { data, labelOf: () => label };
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Turns a variable's text into a value of the leaf's type; a problem string when it cannot. */
export function coerceEnvValue(leaf: ConfigLeaf, raw: string): { value: unknown } | { problem: string } {
  const text = raw.trim();
  const where = `${leaf.envName}: ${leaf.path.join('.')}`;
  if (text === '' && leaf.nullable) return { value: null };
  switch (leaf.kind) {
    case 'number':
      return NUMBER.test(text) ? { value: Number(text) } : { problem: `${where}: expected a number, got ${JSON.stringify(raw)}` };
    case 'boolean': {
      const lower = text.toLowerCase();
      if (TRUE.has(lower)) return { value: true };
      if (FALSE.has(lower)) return { value: false };
      return { problem: `${where}: expected true or false, got ${JSON.stringify(raw)}` };
    }
    case 'json':
      try {
        return { value: JSON.parse(text) as unknown };
      } catch {
        return { problem: `${where}: expected JSON (e.g. ["a","b"] or [{"name":"x"}]), got ${JSON.stringify(raw)}` };
      }
    case 'string':
    case 'enum':
      return { value: raw };
  }
}

function setPath(target: Mapping, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (isMapping(next)) node = next;
    else node = node[key] = {};
  }
  node[path[path.length - 1] as string] = value;
}

/**
 * The layer of `TASKER_<PATH>` variables that name a key. Variables with the prefix
 * that name no key are returned in `unknown` (the caller allows some of them).
 */
export function envLayer(env: NodeJS.ProcessEnv, problems: string[]): { layer: ConfigLayer; unknown: string[] } {
  const data: Mapping = {};
  const labels = new Map<string, string>();
  const unknown: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TASKER_')) continue;
    const raw = env[name];
    if (raw === undefined) continue;
    const leaf = configKeys.byEnvName.get(name);
    if (!leaf) {
      unknown.push(name);
      continue;
    }
    const coerced = coerceEnvValue(leaf, raw);
    if ('problem' in coerced) {
      problems.push(coerced.problem);
      continue;
    }
    setPath(data, leaf.path, coerced.value);
    labels.set(leaf.path.join('.'), name);
  }
  const labelOf = (path: string): string => {
    for (const [leafPath, label] of labels) {
      if (path === leafPath || path.startsWith(`${leafPath}.`)) return label;
    }
    return 'environment';
  };
  return { layer: { data, labelOf }, unknown };
}

/**
 * Deep-merges `layers` in order (later wins; mappings merge, lists and scalars replace)
 * and records which layer supplied each key path.
 */
export function mergeLayers(layers: readonly ConfigLayer[]): { data: Mapping; provenance: Map<string, string> } {
  const data: Mapping = {};
  const provenance = new Map<string, string>();
  const record = (value: unknown, path: string, layer: ConfigLayer): void => {
    provenance.set(path, layer.labelOf(path));
    if (isMapping(value)) for (const [k, v] of Object.entries(value)) record(v, `${path}.${k}`, layer);
    else if (Array.isArray(value)) value.forEach((v, i) => record(v, `${path}.${i}`, layer));
  };
  const mergeInto = (target: Mapping, source: Mapping, prefix: string, layer: ConfigLayer): void => {
    for (const [key, value] of Object.entries(source)) {
      const path = prefix ? `${prefix}.${key}` : key;
      const existing = target[key];
      if (isMapping(value) && isMapping(existing)) {
        provenance.set(path, layer.labelOf(path));
        mergeInto(existing, value, path, layer);
      } else {
        target[key] = structuredClone(value);
        record(value, path, layer);
      }
    }
  };
  for (const layer of layers) mergeInto(data, layer.data, '', layer);
  return { data, provenance };
}
