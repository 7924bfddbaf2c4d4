/**
 * Validation of task contexts against a template's `context_schema` (JSON Schema).
 *
 * Dialects: draft-07 by default (no `$schema`, or the draft-07 URI), draft 2019-09 and
 * draft 2020-12 when `$schema` names them; any other `$schema` is refused. Formats
 * (`email`, `date-time`, `uri`, ...) are checked (ajv-formats). Unknown keywords are
 * refused, so a typo such as `requried` is reported instead of silently ignored;
 * `$ref` resolves only inside the schema (nothing is fetched).
 *
 * Each compilation gets its own Ajv instance: it costs a few milliseconds, happens
 * once per template version (callers cache validators, e.g. in ContextSchemaCache
 * keyed by template body hash), keeps schemas with the same `$id` from colliding, and
 * lets a dropped validator take its compiled code with it.
 *
 * A context is always a JSON object (the wire carries a Struct); with no schema any
 * object is accepted.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { pointer } from './canonical-json.js';
import { ValidationError, type Violation } from './errors.js';
import { TEMPLATE_INVALID } from './template.js';

// ajv-formats is CommonJS: under NodeNext the default import is `module.exports`,
// whose `default` property is the plugin.
const addFormats = addFormatsModule.default;

/** Stable error code when a task context does not satisfy its template's schema. */
export const CONTEXT_INVALID = 'CONTEXT_INVALID';

/** Checks one task context; returns every violation (empty = valid), paths relative to the context. */
export type ContextValidator = (context: unknown) => Violation[];

const AJV_OPTIONS: Options = {
  allErrors: true,
  strict: false,
  strictSchema: true,
  logger: false,
};

const DIALECTS: Readonly<Record<string, new (opts: Options) => Ajv | Ajv2019 | Ajv2020>> = {
  'http://json-schema.org/draft-07/schema': Ajv,
  'https://json-schema.org/draft/2019-09/schema': Ajv2019,
  'https://json-schema.org/draft/2020-12/schema': Ajv2020,
};

/** Path prefix under which schema problems are reported (the template document key). */
const SCHEMA_PATH = '/context_schema';

/**
 * Compiles a context schema into a validator. Throws ValidationError `TEMPLATE_INVALID`
 * (violations under `/context_schema`) when the schema itself is invalid; null gives a
 * validator that accepts any JSON object.
 */
export function compileContextSchema(schema: object | null): ContextValidator {
  const compiled = compile(schema);
  if ('violations' in compiled) {
    throw new ValidationError('context_schema is not a valid JSON Schema', compiled.violations, TEMPLATE_INVALID);
  }
  return compiled.validator;
}

/** The problems of a context schema (empty when it compiles), paths under `/context_schema`. */
export function contextSchemaViolations(schema: object | null): Violation[] {
  const compiled = compile(schema);
  return 'violations' in compiled ? compiled.violations : [];
}

/** Throws ValidationError `CONTEXT_INVALID` listing every violation when `context` fails `validator`. */
export function assertContextValid(validator: ContextValidator, context: unknown): void {
  const violations = validator(context);
  if (violations.length === 0) return;
  const summary = violations.map((v) => `${v.path || '/'}: ${v.message}`).join('; ');
  throw new ValidationError(`task context is invalid: ${summary}`, violations, CONTEXT_INVALID);
}

type Compiled = { validator: ContextValidator } | { violations: Violation[] };

function compile(schema: object | null): Compiled {
  if (schema === null) return { validator: (context) => objectViolations(context) };
  if (!isPlainObject(schema)) {
    return { violations: [{ path: SCHEMA_PATH, message: 'must be a JSON Schema object' }] };
  }
  const declared = schema['$schema'];
  const dialect = typeof declared === 'string' ? declared.replace(/#$/, '') : 'http://json-schema.org/draft-07/schema';
  const AjvClass = DIALECTS[dialect];
  if (declared !== undefined && AjvClass === undefined) {
    const supported = Object.keys(DIALECTS).join(', ');
    return { violations: [{ path: `${SCHEMA_PATH}/$schema`, message: `unsupported $schema; use one of ${supported}` }] };
  }
  const ajv = new (AjvClass ?? Ajv)(AJV_OPTIONS);
  addFormats(ajv);
  if (!ajv.validateSchema(schema)) {
    return { violations: toViolations(ajv.errors ?? [], SCHEMA_PATH) };
  }
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    return { violations: [{ path: SCHEMA_PATH, message: err instanceof Error ? err.message : String(err) }] };
  }
  return {
    validator: (context) => {
      const notObject = objectViolations(context);
      if (notObject.length > 0) return notObject;
      return validate(context) ? [] : toViolations(validate.errors ?? [], '');
    },
  };
}

function objectViolations(context: unknown): Violation[] {
  return isPlainObject(context) ? [] : [{ path: '', message: 'must be object' }];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Maps ajv errors to violations. `required`, `additionalProperties` and
 * `unevaluatedProperties` errors point at the property concerned rather than at its
 * parent object; duplicates (ajv repeats errors across `anyOf` branches) are dropped.
 */
function toViolations(errors: readonly ErrorObject[], prefix: string): Violation[] {
  const seen = new Set<string>();
  const out: Violation[] = [];
  for (const e of errors) {
    const params = e.params as Record<string, unknown>;
    let path = prefix + e.instancePath;
    if (e.keyword === 'required' && typeof params['missingProperty'] === 'string') {
      path = pointer(path, params['missingProperty']);
    } else if (e.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
      path = pointer(path, params['additionalProperty']);
    } else if (e.keyword === 'unevaluatedProperties' && typeof params['unevaluatedProperty'] === 'string') {
      path = pointer(path, params['unevaluatedProperty']);
    }
    const message = e.message ?? `fails ${e.keyword}`;
    const key = `${path}\n${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

/**
 * A small least-recently-used cache of compiled context validators, keyed by a
 * caller-chosen string (normally the template body hash, so a key never goes stale).
 */
export class ContextSchemaCache {
  private readonly entries = new Map<string, ContextValidator>();

  /** @param maxEntries how many validators to keep before evicting the least recently used. */
  constructor(
    private readonly maxEntries = 256,
    private readonly compileFn: (schema: object | null) => ContextValidator = compileContextSchema,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  /** The validator for `key`, compiling `schema` on a miss (compile errors propagate, nothing is cached). */
  validatorFor(key: string, schema: object | null): ContextValidator {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const validator = this.compileFn(schema);
    this.entries.set(key, validator);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    return validator;
  }

  /** True when a validator for `key` is cached (does not refresh it). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Number of cached validators. */
  get size(): number {
    return this.entries.size;
  }

  /** Drops every cached validator. */
  clear(): void {
    this.entries.clear();
  }
}
