/**
 * The template registry: registering template versions (immutable once stored),
 * resolving a reference to the version a task runs, and loading the template
 * files of `config/templates/` at start. Stored versions never change (a version is
 * registered once, with one body, and never deleted), so parsed templates are cached
 * by row id, compiled context validators by body hash, and the resolution of an exact
 * `namespace/name@version` for good. Which version is the latest is read every time:
 * another instance may register a newer one.
 */
import { readdir, readFile as fsReadFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { ContextValidator } from '../domain/context-schema.js';
import { ContextSchemaCache } from '../domain/context-schema.js';
import type { Violation } from '../domain/errors.js';
import { AlreadyExistsError, AppError, NotFoundError, ValidationError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { DEFAULT_RETRY_POLICY } from '../domain/retry-policy.js';
import {
  applyEnvironment,
  parseTemplateDocument,
  parseTemplateYaml,
  templateBodyHash,
  templateAsDocument,
} from '../domain/template-document.js';
import type { TemplateDefaults } from '../domain/template-document.js';
import { assertValidTemplate, validateTemplate } from '../domain/template-validation.js';
import type { TaskTemplate } from '../domain/template.js';
import { templateKey } from '../domain/template.js';
import type { DB } from '../store/schema.js';
import { findTemplateVersion, insertTemplate, listTemplates, listTemplateVersions } from '../store/templates.js';
import type { TemplateRow } from '../store/templates.js';

/** A reference to a template; an empty or absent version means the latest registered one. */
export interface TemplateLookup {
  readonly namespace: string;
  readonly name: string;
  readonly version?: string | null;
}

/** A stored template version, ready to create tasks from. */
export interface ResolvedTemplate {
  /** `task_templates.id`. */
  readonly id: string;
  readonly template: TaskTemplate;
  readonly bodyHash: string;
  readonly createdAt: Date;
  /** The compiled context schema. */
  readonly validateContext: ContextValidator;
}

/** What {@link TemplateRegistry.register} did. */
export interface RegisterResult {
  readonly template: TaskTemplate;
  /** False when this exact version and body were already registered. */
  readonly created: boolean;
  readonly id: string;
}

/** One template file loaded by {@link TemplateRegistry.loadDirectories}. */
export interface LoadedTemplate {
  readonly file: string;
  readonly template: TaskTemplate;
  readonly created: boolean;
}

/** Dependencies of {@link TemplateRegistry}. */
export interface TemplateRegistryOptions {
  readonly db: Kysely<DB>;
  readonly clock: Clock;
  /** Defaults for fields a template document leaves out. Default: DEFAULT_RETRY_POLICY. */
  readonly defaults?: TemplateDefaults;
  readonly logger?: Logger;
}

const VERSION_PART = /(\d+|[^\d.]+)/g;

function comparePart(a: string, b: string): number {
  const na = /^\d+$/.test(a);
  const nb = /^\d+$/.test(b);
  if (na && nb) return Number(a) - Number(b) || a.length - b.length;
  if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareParts(a: string, b: string): number {
  const pa = a.match(VERSION_PART) ?? [];
  const pb = b.match(VERSION_PART) ?? [];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === undefined) return -1;
    if (pb[i] === undefined) return 1;
    const c = comparePart(pa[i] as string, pb[i] as string);
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * Orders versions semver-like: build metadata (`+...`) ignored; the core compared
 * part by part, numbers numerically (`1.10.0` > `1.9.0`); a pre-release (`1.0.0-rc.1`)
 * below its release. Non-semver versions (`3`, `2024-06`) fall back to the same
 * part-wise comparison. Returns < 0, 0 or > 0.
 */
export function compareVersions(a: string, b: string): number {
  const [coreA = '', preA] = (a.split('+')[0] ?? '').split(/-(.*)/s);
  const [coreB = '', preB] = (b.split('+')[0] ?? '').split(/-(.*)/s);
  const core = compareParts(coreA, coreB);
  if (core !== 0) return core;
  if (!preA || !preB) return preA ? -1 : preB ? 1 : 0;
  return compareParts(preA, preB);
}

/** True for a semver pre-release such as `2.0.0-rc.1` (a `-` after a numeric core). */
export function isPrerelease(version: string): boolean {
  return /^\d+(\.\d+)*-/.test(version.split('+')[0] ?? '');
}

/** Registers, resolves, lists and loads task templates. */
export class TemplateRegistry {
  readonly #db: Kysely<DB>;
  readonly #clock: Clock;
  readonly #defaults: TemplateDefaults;
  readonly #logger: Logger | undefined;
  readonly #validators = new ContextSchemaCache();
  readonly #parsed = new Map<string, TaskTemplate>();
  /** Resolutions of stored versions by {@link versionKey}; only found versions (one may be registered later). */
  readonly #resolved = new Map<string, ResolvedTemplate>();

  constructor(options: TemplateRegistryOptions) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#defaults = options.defaults ?? { retry: DEFAULT_RETRY_POLICY };
    this.#logger = options.logger;
  }

  /** Every rule `template` breaks (empty when valid). */
  validate(template: TaskTemplate): Violation[] {
    return validateTemplate(template);
  }

  /**
   * Stores a template version. Registering the same namespace/name@version with the
   * same body is a no-op (`created: false`); with another body it is refused with
   * AlreadyExistsError `TEMPLATE_VERSION_CONFLICT`. Invalid templates are refused
   * with ValidationError `TEMPLATE_INVALID`.
   */
  async register(template: TaskTemplate): Promise<RegisterResult> {
    assertValidTemplate(template);
    const bodyHash = templateBodyHash(template);
    const { created, row } = await insertTemplate(this.#db, {
      id: newId(),
      namespace: template.namespace,
      name: template.name,
      version: template.version,
      description: template.description,
      bodyJson: JSON.stringify(templateAsDocument(template)),
      bodyHash,
      stepCount: template.steps.length,
      now: this.#clock.now(),
    });
    if (!created && row.bodyHash !== bodyHash) {
      throw new AlreadyExistsError(
        `template ${templateKey(template)} is already registered with a different body; register a new version`,
        'TEMPLATE_VERSION_CONFLICT',
        { template: templateKey(template) },
      );
    }
    if (created) this.#logger?.info({ template: templateKey(template), steps: template.steps.length }, 'template registered');
    return { template: this.#toTemplate(row), created, id: row.id };
  }

  /**
   * The template `ref` names; with an empty version, the highest release (by
   * {@link compareVersions}; pre-releases only if there is no release).
   * NotFoundError `TEMPLATE_NOT_FOUND`.
   */
  async get(ref: TemplateLookup): Promise<TaskTemplate> {
    return (await this.resolve(ref)).template;
  }

  /**
   * Like {@link get}, with the row id, body hash and compiled context schema. A stored
   * version is read once per registry; the latest version is looked up on every call.
   */
  async resolve(ref: TemplateLookup): Promise<ResolvedTemplate> {
    const version = ref.version?.trim() || (await this.#latestVersion(ref.namespace, ref.name));
    const key = version === null ? null : versionKey(ref.namespace, ref.name, version);
    const cached = key === null ? undefined : this.#resolved.get(key);
    if (cached) return cached;
    const row = version === null ? null : await findTemplateVersion(this.#db, ref.namespace, ref.name, version);
    if (!row || key === null) {
      throw new NotFoundError('template', `${ref.namespace}/${ref.name}${ref.version ? `@${ref.version}` : ''}`);
    }
    const template = this.#toTemplate(row);
    const resolved: ResolvedTemplate = {
      id: row.id,
      template,
      bodyHash: row.bodyHash,
      createdAt: row.createdAt,
      validateContext: this.#validators.validatorFor(row.bodyHash, template.contextSchema),
    };
    this.#resolved.set(key, resolved);
    return resolved;
  }

  /** Every registered version, optionally of one namespace, by namespace, name and registration. */
  async list(options: { namespace?: string } = {}): Promise<TaskTemplate[]> {
    return (await listTemplates(this.#db, options)).map((row) => this.#toTemplate(row));
  }

  /**
   * Registers every `*.yaml` / `*.yml` file under `dirs` (recursively, in path order),
   * with the overrides of `environment` applied. A file that does not parse or
   * conflicts fails the whole load with an error naming the file.
   */
  async loadDirectories(
    dirs: readonly string[],
    environment: string,
    readFile: (path: string) => Promise<string> = (p) => fsReadFile(p, 'utf8'),
  ): Promise<LoadedTemplate[]> {
    const loaded: LoadedTemplate[] = [];
    for (const dir of dirs) {
      const files = (await readdir(dir, { recursive: true }))
        .filter((f) => /\.ya?ml$/i.test(f))
        .map((f) => join(dir, f))
        .sort();
      for (const file of files) {
        try {
          const parsed = parseTemplateYaml(await readFile(file), this.#defaults);
          const { template, created } = await this.register(applyEnvironment(parsed, environment));
          loaded.push({ file, template, created });
        } catch (err) {
          throw inFile(relative(process.cwd(), file) || file, err);
        }
      }
    }
    return loaded;
  }

  /** The highest release version (pre-releases only when there is no release), ties by registration time. */
  async #latestVersion(namespace: string, name: string): Promise<string | null> {
    const versions = await listTemplateVersions(this.#db, namespace, name);
    const releases = versions.filter((v) => !isPrerelease(v.version));
    let best: { version: string; createdAt: Date } | null = null;
    for (const v of releases.length > 0 ? releases : versions) {
      if (!best) best = v;
      else {
        const c = compareVersions(v.version, best.version);
        if (c > 0 || (c === 0 && v.createdAt >= best.createdAt)) best = v;
      }
    }
    return best?.version ?? null;
  }

  #toTemplate(row: TemplateRow): TaskTemplate {
    let template = this.#parsed.get(row.id);
    if (!template) {
      template = parseTemplateDocument(row.body, this.#defaults);
      this.#parsed.set(row.id, template);
    }
    return template;
  }
}

/** The cache key of a stored version (JSON, so no separator can be confused with a name). */
function versionKey(namespace: string, name: string, version: string): string {
  return JSON.stringify([namespace, name, version]);
}

/** `err` with the file name in front of its message, keeping its type and code. */
function inFile(file: string, err: unknown): Error {
  if (err instanceof ValidationError) return new ValidationError(`${file}: ${err.message}`, err.violations, err.code);
  if (err instanceof AlreadyExistsError) return new AlreadyExistsError(`${file}: ${err.message}`, err.code, { ...err.details, file });
  if (err instanceof AppError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new Error(`${file}: ${reason}`, { cause: err });
}
