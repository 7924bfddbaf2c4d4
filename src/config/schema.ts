/**
 * The one schema of Tasker's configuration. Keys are snake_case exactly as in the
 * YAML files, every object is strict (an unknown key is an error naming its path),
 * and every key has a default here; `config/tasker.yaml` documents each of them
 * (a unit test keeps the two in step).
 *
 * The parsed shape is {@link ParsedConfig}; `load.ts` then fills in what the schema
 * cannot know (the instance id, token values read from `token_env`, absolute paths)
 * and returns {@link Config}.
 */
import { z } from 'zod';

const MiB = 1024 * 1024;

/** Roles a bearer token can hold; `admin` satisfies every role requirement. */
export const ROLES = ['worker', 'client', 'admin'] as const;
/** A role a bearer token can hold. */
export type Role = (typeof ROLES)[number];

/** pino level names accepted by `log.level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Backoff shapes of a retry policy (same names as the template format and the proto enum). */
export const BACKOFF_KINDS = ['exponential', 'linear', 'fixed'] as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const nullablePath = () => z.string().min(1).nullable().default(null);

const tlsSchema = z
  .object({
    enabled: z.boolean().default(false),
    cert_file: nullablePath(),
    key_file: nullablePath(),
    client_ca_file: nullablePath(),
  })
  .strict();

const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: int(0, 65535).default(50051),
    instance_id: z.string().min(1).max(200).nullable().default(null),
    max_receive_message_bytes: int(1024).default(4 * MiB),
    shutdown_grace_ms: int(0).default(10_000),
    reflection: z.boolean().default(true),
    tls: tlsSchema.prefault({}),
  })
  .strict();

const databaseSchema = z
  .object({
    url: z.string().min(1).nullable().default(null),
    data_dir: nullablePath(),
    pool_size: int(1, 1000).default(10),
    statement_timeout_ms: int(0).default(30_000),
    connect_timeout_ms: int(1).default(5_000),
    migrate_on_start: z.boolean().default(true),
  })
  .strict();

const logSchema = z
  .object({
    level: z.enum(LOG_LEVELS).default('info'),
    pretty: z.boolean().default(false),
  })
  .strict();

const tokenSchema = z
  .object({
    name: z.string().min(1),
    token: z.string().min(16).optional(),
    token_env: z.string().regex(ENV_NAME, 'an environment variable name').optional(),
    roles: z.array(z.enum(ROLES)).min(1),
    namespaces: z.array(z.string().min(1)).min(1).default(['*']),
  })
  .strict();

const authSchema = z
  .object({
    enabled: z.boolean().default(true),
    tokens: z.array(tokenSchema).default([]),
  })
  .strict();

const workersSchema = z
  .object({
    heartbeat_interval_ms: int(100).default(5_000),
    lease_ms: int(1_000).default(30_000),
    session_ttl_ms: int(1_000).default(300_000),
    max_in_flight: int(1, 100_000).default(1_000),
    max_report_bytes: int(1024).default(1 * MiB),
    max_batch_bytes: int(64 * 1024).default(3 * MiB),
  })
  .strict();

const retrySchema = z
  .object({
    max_attempts: int(1, 100).default(3),
    backoff: z.enum(BACKOFF_KINDS).default('exponential'),
    base_ms: int(0).default(1_000),
    max_ms: int(0).default(60_000),
    jitter: z.number().min(0).max(1).default(0.1),
  })
  .strict();

const engineSchema = z
  .object({
    dispatch_batch_size: int(1, 10_000).default(256),
    poll_interval_ms: int(10).default(1_000),
    group_commit_max: int(1, 100_000).default(512),
    group_commit_delay_ms: int(0, 10_000).default(2),
    reaper_interval_ms: int(10).default(1_000),
    default_retry: retrySchema.prefault({}),
  })
  .strict();

const templatesSchema = z
  .object({
    dirs: z.array(z.string().min(1)).default(['config/templates']),
    register_on_start: z.boolean().default(true),
  })
  .strict();

/** The whole configuration's shape, without the cross-key checks (used to enumerate keys). */
export const configShape = z
  .object({
    environment: z
      .string()
      .regex(/^[a-z][a-z0-9_-]*$/, 'a lower-case name such as development, test or production')
      .default('development'),
    server: serverSchema.prefault({}),
    database: databaseSchema.prefault({}),
    log: logSchema.prefault({}),
    auth: authSchema.prefault({}),
    workers: workersSchema.prefault({}),
    engine: engineSchema.prefault({}),
    templates: templatesSchema.prefault({}),
  })
  .strict();

/** What {@link configSchema} produces. */
export type ParsedConfig = z.output<typeof configShape>;

/** The whole configuration, as written in YAML (after defaults), with the checks that span keys. */
export const configSchema = configShape.superRefine(crossCheck);

/** One configured bearer token, with its secret resolved (from `token` or the `token_env` variable). */
export interface AuthToken {
  readonly name: string;
  readonly token: string;
  /** The variable the secret was read from, when it came from the environment. */
  readonly token_env: string | null;
  readonly roles: readonly Role[];
  /** Namespaces the token may act in; `*` means all. */
  readonly namespaces: readonly string[];
}

/**
 * Tasker's effective configuration: {@link ParsedConfig} with `server.instance_id`
 * filled in, token secrets resolved, and every path (`database.data_dir`,
 * `templates.dirs`, `server.tls.*_file`) absolute.
 */
export type Config = Omit<ParsedConfig, 'server' | 'auth'> & {
  readonly server: Omit<ParsedConfig['server'], 'instance_id'> & { readonly instance_id: string };
  readonly auth: { readonly enabled: boolean; readonly tokens: readonly AuthToken[] };
};

type Ctx = z.RefinementCtx;

function crossCheck(c: ParsedConfig, ctx: Ctx): void {
  checkAuth(c, ctx);
  checkTls(c, ctx);
  const w = c.workers;
  if (w.lease_ms <= w.heartbeat_interval_ms) {
    ctx.addIssue({
      code: 'custom',
      path: ['workers', 'lease_ms'],
      input: w.lease_ms,
      message: `expected more than workers.heartbeat_interval_ms (${w.heartbeat_interval_ms})`,
    });
  }
  if (w.session_ttl_ms < w.lease_ms) {
    ctx.addIssue({
      code: 'custom',
      path: ['workers', 'session_ttl_ms'],
      input: w.session_ttl_ms,
      message: `expected at least workers.lease_ms (${w.lease_ms})`,
    });
  }
  const r = c.engine.default_retry;
  if (r.max_ms < r.base_ms) {
    ctx.addIssue({
      code: 'custom',
      path: ['engine', 'default_retry', 'max_ms'],
      input: r.max_ms,
      message: `expected at least engine.default_retry.base_ms (${r.base_ms})`,
    });
  }
}

function checkAuth(c: ParsedConfig, ctx: Ctx): void {
  const names = new Set<string>();
  c.auth.tokens.forEach((t, i) => {
    if ((t.token === undefined) === (t.token_env === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'tokens', i], message: 'expected exactly one of token or token_env' });
    }
    if (names.has(t.name)) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'tokens', i, 'name'], message: 'expected a unique token name' });
    }
    names.add(t.name);
  });
  if (c.auth.enabled && c.auth.tokens.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'tokens'],
      input: c.auth.tokens,
      message:
        'expected at least one token while auth.enabled is true (add tokens, or set auth.enabled: false for development only)',
    });
  }
}

function checkTls(c: ParsedConfig, ctx: Ctx): void {
  const tls = c.server.tls;
  if (!tls.enabled) return;
  for (const key of ['cert_file', 'key_file'] as const) {
    if (tls[key] === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'tls', key],
        input: null,
        message: 'expected a file path while server.tls.enabled is true',
      });
    }
  }
}
