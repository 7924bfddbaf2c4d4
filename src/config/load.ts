/**
 * Loading the effective configuration. Layers, later ones winning:
 *
 *  1. schema defaults (`schema.ts`)
 *  2. `config/tasker.yaml`
 *  3. `config/tasker.<environment>.yaml`, if present; the environment is
 *     `TASKER_ENV`, else `environment` from `config/tasker.yaml`, else `development`
 *  4. the file named by `TASKER_CONFIG`, if set
 *  5. `files` passed by the caller (the CLI's `--config`), in order
 *  6. `TASKER_<KEY_PATH>` variables (`TASKER_DATABASE_URL`, `TASKER_SERVER_PORT`, …)
 *  7. `overrides` passed by the caller (tests)
 *
 * This module is the only reader of `process.env`. Every problem found is reported
 * at once in one `ConfigError`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../domain/errors.js';
import { formatIssue, labelFor } from './issues.js';
import { ALLOWED_TASKER_VARIABLES } from './keys.js';
import { projectRoot } from './paths.js';
import type { AuthToken, Config, ParsedConfig, configShape } from './schema.js';
import { configSchema } from './schema.js';
import type { ConfigLayer, Mapping } from './sources.js';
import { envLayer, isMapping, mergeLayers, readYamlLayer } from './sources.js';

/** What {@link loadConfig} reads. */
export interface LoadConfigOptions {
  /**
   * The root directory: `config/` is looked up here, and relative paths in values
   * (`database.data_dir`, `templates.dirs`, `server.tls.*_file`) resolve against it.
   * Default: the Tasker project root.
   */
  cwd?: string;
  /** Environment variables; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Extra YAML files merged after `TASKER_CONFIG` (relative paths resolve against the current directory). */
  files?: readonly string[];
  /** Values merged last, in the YAML shape. */
  overrides?: ConfigOverrides;
}

/** A partial configuration in the YAML shape (what a YAML file may contain). */
export type ConfigOverrides = z.input<typeof configShape>;

const DEFAULT_ENVIRONMENT = 'development';
const MIN_TOKEN_LENGTH = 16;

function fail(problems: readonly string[]): never {
  const message =
    problems.length === 1
      ? `invalid configuration: ${problems[0]}`
      : `invalid configuration (${problems.length} problems):\n${problems.map((p) => `  ${p}`).join('\n')}`;
  throw new ConfigError(message, { problems: [...problems] });
}

function displayName(root: string, file: string): string {
  const rel = relative(root, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function chooseEnvironment(options: LoadConfigOptions, env: NodeJS.ProcessEnv, base: ConfigLayer | null): string {
  const fromOverrides = options.overrides?.environment;
  if (typeof fromOverrides === 'string' && fromOverrides) return fromOverrides;
  const fromEnv = env.TASKER_ENV?.trim();
  if (fromEnv) return fromEnv;
  const fromFile = base?.data.environment;
  return typeof fromFile === 'string' && fromFile ? fromFile : DEFAULT_ENVIRONMENT;
}

function collectLayers(options: LoadConfigOptions, root: string, env: NodeJS.ProcessEnv, problems: string[]) {
  const layers: ConfigLayer[] = [];
  const yaml = (file: string, required: boolean) => {
    const layer = readYamlLayer(file, displayName(root, file), required, problems);
    if (layer) layers.push(layer);
    return layer;
  };
  const baseFile = join(root, 'config', 'tasker.yaml');
  const base = yaml(baseFile, false);
  const environment = chooseEnvironment(options, env, base);
  if (/^[a-z][a-z0-9_-]*$/.test(environment)) yaml(join(root, 'config', `tasker.${environment}.yaml`), false);
  const extra = env.TASKER_CONFIG?.trim();
  if (extra) {
    const layer = readYamlLayer(resolve(extra), `TASKER_CONFIG (${extra})`, true, problems);
    if (layer) layers.push(layer);
  }
  for (const file of options.files ?? []) yaml(resolve(file), true);
  const fromEnv = envLayer(env, problems);
  layers.push(fromEnv.layer);
  if (options.overrides) layers.push({ data: options.overrides as Mapping, labelOf: () => 'overrides' });
  return { layers, environment, baseLabel: displayName(root, baseFile), unknownEnv: fromEnv.unknown };
}

function tokenEnvNames(data: Mapping): Set<string> {
  const tokens = isMapping(data.auth) ? data.auth.tokens : undefined;
  const names = new Set<string>();
  if (Array.isArray(tokens)) {
    for (const t of tokens) if (isMapping(t) && typeof t.token_env === 'string') names.add(t.token_env);
  }
  return names;
}

function resolveTokens(parsed: ParsedConfig, env: NodeJS.ProcessEnv, label: (i: number) => string, problems: string[]): AuthToken[] {
  return parsed.auth.tokens.map((t, i) => {
    let secret = t.token ?? '';
    if (t.token_env !== undefined) {
      secret = env[t.token_env] ?? '';
      const where = `${label(i)}: auth.tokens.${i}.token_env`;
      if (!secret) problems.push(`${where}: expected the variable ${t.token_env} to hold the token, got nothing`);
      else if (secret.length < MIN_TOKEN_LENGTH) {
        problems.push(`${where}: expected ${t.token_env} to hold at least ${MIN_TOKEN_LENGTH} characters, got ${secret.length}`);
      }
    }
    return { name: t.name, token: secret, token_env: t.token_env ?? null, roles: t.roles, namespaces: t.namespaces };
  });
}

function resolvePath(root: string, value: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : resolve(root, value);
}

function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Loads, merges and validates the configuration (see the module comment for the
 * order). Throws `ConfigError` listing every problem as
 * `<file or env var>: <key.path>: expected …, got …`.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const root = resolve(options.cwd ?? projectRoot);
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const { layers, environment, baseLabel, unknownEnv } = collectLayers(options, root, env, problems);
  const { data, provenance } = mergeLayers(layers);

  const allowed = new Set([...ALLOWED_TASKER_VARIABLES, ...tokenEnvNames(data)]);
  for (const name of unknownEnv.filter((n) => !allowed.has(n))) {
    const hint = name === 'TASKER_ENVIRONMENT' ? ' (the environment is chosen with TASKER_ENV)' : '';
    problems.push(`${name}: expected a TASKER_* variable naming a configuration key${hint}, got an unknown variable`);
  }
  // config/tasker.yaml's `environment` is only the default choice; any later layer must agree with the choice.
  const environmentLabel = labelFor(provenance, ['environment']);
  if (data.environment !== undefined && data.environment !== environment && environmentLabel !== baseLabel) {
    problems.push(
      `${environmentLabel}: environment: expected ${JSON.stringify(environment)} ` +
        `(chosen by TASKER_ENV or config/tasker.yaml), got ${JSON.stringify(data.environment)}`,
    );
  }
  if (problems.length > 0) fail(problems);
  data.environment = environment;

  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) fail(result.error.issues.flatMap((issue) => formatIssue(issue, data, provenance)));
  const parsed = result.data;
  const tokens = resolveTokens(parsed, env, (i) => labelFor(provenance, ['auth', 'tokens', i]), problems);
  if (problems.length > 0) fail(problems);

  const tls = parsed.server.tls;
  const maybePath = (p: string | null) => (p === null ? null : resolvePath(root, p));
  return {
    ...parsed,
    server: {
      ...parsed.server,
      instance_id: parsed.server.instance_id ?? defaultInstanceId(),
      tls: { ...tls, cert_file: maybePath(tls.cert_file), key_file: maybePath(tls.key_file), client_ca_file: maybePath(tls.client_ca_file) },
    },
    database: { ...parsed.database, data_dir: maybePath(parsed.database.data_dir) },
    auth: { enabled: parsed.auth.enabled, tokens },
    templates: { ...parsed.templates, dirs: parsed.templates.dirs.map((d) => resolvePath(root, d)) },
  };
}
