/**
 * The configuration's keys, read off the schema: every leaf with its type and its
 * `TASKER_*` environment variable, and every object with the keys it allows. The
 * env-override mapping and the "unknown key" messages both come from here, so a key
 * added to the schema is overridable from the environment without further work.
 */
import { z } from 'zod';
import { configShape } from './schema.js';

/** How an environment variable's text becomes a value for a leaf. */
export type LeafKind = 'string' | 'number' | 'boolean' | 'enum' | 'json';

/** One leaf key of the configuration. */
export interface ConfigLeaf {
  /** Key path, e.g. `['database', 'url']`. */
  readonly path: readonly string[];
  /** `TASKER_` + the path joined with `_`, upper-cased: `TASKER_DATABASE_URL`. */
  readonly envName: string;
  readonly kind: LeafKind;
  /** Whether `null` is a valid value (an empty variable then means null). */
  readonly nullable: boolean;
  /** For `enum` leaves, the allowed values. */
  readonly values: readonly string[];
}

/** Keys that have no `TASKER_<PATH>` variable: `environment` is chosen with `TASKER_ENV`. */
const NOT_FROM_ENV = new Set(['environment']);

/** Variables with the `TASKER_` prefix that are not key overrides but are read on purpose. */
export const ALLOWED_TASKER_VARIABLES: readonly string[] = ['TASKER_ENV', 'TASKER_CONFIG', 'TASKER_TEST_DATABASE_URL'];

/** The env variable name of a key path. */
export function envNameOf(path: readonly string[]): string {
  return `TASKER_${path.join('_').toUpperCase()}`;
}

function unwrap(schema: z.ZodType): { inner: z.ZodType; nullable: boolean } {
  let inner = schema;
  let nullable = false;
  for (;;) {
    if (inner instanceof z.ZodNullable) nullable = true;
    if (
      inner instanceof z.ZodDefault ||
      inner instanceof z.ZodPrefault ||
      inner instanceof z.ZodOptional ||
      inner instanceof z.ZodNullable
    ) {
      inner = inner.unwrap() as z.ZodType;
    } else {
      return { inner, nullable };
    }
  }
}

function leafOf(path: string[], schema: z.ZodType, nullable: boolean): ConfigLeaf {
  const base = { path, envName: envNameOf(path), nullable, values: [] as string[] };
  if (schema instanceof z.ZodNumber) return { ...base, kind: 'number' };
  if (schema instanceof z.ZodBoolean) return { ...base, kind: 'boolean' };
  if (schema instanceof z.ZodString) return { ...base, kind: 'string' };
  if (schema instanceof z.ZodEnum) return { ...base, kind: 'enum', values: schema.options.map(String) };
  if (schema instanceof z.ZodArray) return { ...base, kind: 'json' };
  throw new Error(`config key ${path.join('.')}: schema type ${schema.constructor.name} has no env coercion`);
}

function walk(
  schema: z.ZodObject,
  prefix: string[],
  leaves: ConfigLeaf[],
  objects: Map<string, readonly string[]>,
): void {
  objects.set(prefix.join('.'), Object.keys(schema.shape));
  for (const [key, child] of Object.entries(schema.shape)) {
    const path = [...prefix, key];
    const { inner, nullable } = unwrap(child as z.ZodType);
    if (inner instanceof z.ZodObject) {
      walk(inner, path, leaves, objects);
      continue;
    }
    leaves.push(leafOf(path, inner, nullable));
    // Lists of mappings (auth.tokens) are one JSON leaf, but their items' keys are known: `auth.tokens.*`.
    const element = inner instanceof z.ZodArray ? unwrap(inner.element as z.ZodType).inner : null;
    if (element instanceof z.ZodObject) walk(element, [...path, '*'], [], objects);
  }
}

/** Every leaf key and every object's allowed keys (by dotted path; `''` is the root). */
export interface ConfigKeys {
  readonly leaves: readonly ConfigLeaf[];
  /** Leaves that can be set from the environment, by variable name. */
  readonly byEnvName: ReadonlyMap<string, ConfigLeaf>;
  /** Allowed keys of each mapping, by dotted path; list items are `*` (`auth.tokens.*`). */
  readonly objects: ReadonlyMap<string, readonly string[]>;
}

function buildKeys(): ConfigKeys {
  const leaves: ConfigLeaf[] = [];
  const objects = new Map<string, readonly string[]>();
  walk(configShape, [], leaves, objects);
  const byEnvName = new Map<string, ConfigLeaf>();
  for (const leaf of leaves) {
    if (NOT_FROM_ENV.has(leaf.path.join('.'))) continue;
    const clash = byEnvName.get(leaf.envName);
    if (clash) throw new Error(`config keys ${clash.path.join('.')} and ${leaf.path.join('.')} share ${leaf.envName}`);
    byEnvName.set(leaf.envName, leaf);
  }
  return { leaves, byEnvName, objects };
}

/** The configuration's keys (computed from the schema, which is immutable). */
export const configKeys: ConfigKeys = buildKeys();
