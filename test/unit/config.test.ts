/**
 * Loading configuration: defaults, per-environment merge, TASKER_* overrides with
 * type coercion, and errors that name the source, the key path and the expectation.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import type { Pair, YAMLMap } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { configKeys } from '../../src/config/keys.js';
import type { LoadConfigOptions } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/load.js';
import { projectRoot } from '../../src/config/paths.js';
import { REDACTED, redactConfig } from '../../src/config/redact.js';
import { configShape } from '../../src/config/schema.js';
import { ConfigError } from '../../src/domain/errors.js';

const dirs: string[] = [];

/** A root directory with the given config/ files. */
function rootWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'tasker-config-'));
  dirs.push(root);
  mkdirSync(join(root, 'config'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
  return root;
}

function configError(options: LoadConfigOptions): ConfigError {
  try {
    loadConfig(options);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const OPEN = 'auth:\n  enabled: false\n';

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the shipped config files', () => {
  it('load as development by default: defaults, auth off, pretty logs, absolute paths', () => {
    const config = loadConfig({ env: {} });
    expect(config.environment).toBe('development');
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 50051, reflection: true, shutdown_grace_ms: 10_000 });
    expect(config.server.instance_id).toMatch(/-\d+-[0-9a-f]{6}$/);
    expect(config.database).toMatchObject({ url: null, data_dir: null, pool_size: 10, migrate_on_start: true });
    expect(config.auth).toEqual({ enabled: false, tokens: [] });
    expect(config.log).toEqual({ level: 'info', pretty: true });
    expect(config.engine.default_retry).toEqual({ max_attempts: 3, backoff: 'exponential', base_ms: 1000, max_ms: 60_000, jitter: 0.1 });
    expect(config.templates.dirs).toEqual([join(projectRoot, 'config', 'templates')]);
  });

  it('load as test with TASKER_ENV=test: any port, warn logs, a token per role', () => {
    const config = loadConfig({ env: { TASKER_ENV: 'test' } });
    expect(config.environment).toBe('test');
    expect(config.server.port).toBe(0);
    expect(config.log.level).toBe('warn');
    expect(config.auth.enabled).toBe(true);
    expect(config.auth.tokens.map((t) => [t.name, t.token, t.roles])).toEqual([
      ['test-worker', 'test-worker-token', ['worker']],
      ['test-client', 'test-client-token', ['client']],
      ['test-admin', 'test-admin-token', ['admin']],
    ]);
  });

  it('config/tasker.yaml sets every key to its schema default, with a comment above each', () => {
    const text = readFileSync(join(projectRoot, 'config', 'tasker.yaml'), 'utf8');
    const doc = parseDocument(text);
    expect(configShape.parse(doc.toJS())).toEqual(configShape.parse({}));
    const undocumented = configKeys.leaves.filter((leaf) => {
      const parent = leaf.path.length === 1 ? doc.contents : doc.getIn(leaf.path.slice(0, -1), true);
      if (!isMap(parent)) return true;
      const map = parent as YAMLMap;
      const index = map.items.findIndex((p: Pair) => String((p.key as { value?: unknown }).value) === leaf.path.at(-1));
      if (index < 0) return true;
      const comment = (map.items[index]?.key as { commentBefore?: string }).commentBefore ?? (index === 0 ? map.commentBefore : undefined);
      return !comment?.trim();
    });
    expect(undocumented.map((l) => l.path.join('.'))).toEqual([]);
  });
});

describe('environment overrides', () => {
  it('map each leaf to TASKER_<PATH> and coerce by type', () => {
    const config = loadConfig({
      env: {
        TASKER_SERVER_PORT: '0',
        TASKER_SERVER_REFLECTION: 'false',
        TASKER_DATABASE_URL: 'postgres://tasker:secret@db.internal:5432/tasker',
        TASKER_WORKERS_LEASE_MS: '45000',
        TASKER_ENGINE_DEFAULT_RETRY_JITTER: '0.25',
        TASKER_LOG_LEVEL: 'debug',
        TASKER_TEMPLATES_DIRS: '["extra/templates", "/srv/templates"]',
      },
    });
    expect(config.server.port).toBe(0);
    expect(config.server.reflection).toBe(false);
    expect(config.database.url).toBe('postgres://tasker:secret@db.internal:5432/tasker');
    expect(config.workers.lease_ms).toBe(45_000);
    expect(config.engine.default_retry.jitter).toBe(0.25);
    expect(config.log.level).toBe('debug');
    expect(config.templates.dirs).toEqual([join(projectRoot, 'extra', 'templates'), '/srv/templates']);
  });

  it('set a nullable key to null when empty, and win over every file', () => {
    const root = rootWith({
      'config/tasker.yaml': `${OPEN}database:\n  data_dir: from-base\n  pool_size: 3\n`,
      'config/tasker.development.yaml': 'database:\n  pool_size: 4\n',
    });
    const config = loadConfig({ cwd: root, env: { TASKER_DATABASE_DATA_DIR: '', TASKER_DATABASE_POOL_SIZE: '5' } });
    expect(config.database.data_dir).toBeNull();
    expect(config.database.pool_size).toBe(5);
  });

  it('reject a TASKER_ variable that names no key, but allow the known extra ones', () => {
    const err = configError({ env: { TASKER_SERVER_PROT: '1', TASKER_ENVIRONMENT: 'test' } });
    expect(err.message).toContain('TASKER_SERVER_PROT: expected a TASKER_* variable naming a configuration key');
    expect(err.message).toContain('TASKER_ENVIRONMENT: expected a TASKER_* variable naming a configuration key (the environment is chosen with TASKER_ENV)');
    const config = loadConfig({ env: { TASKER_ENV: 'development', TASKER_TEST_DATABASE_URL: 'postgres://x/y' } });
    expect(config.environment).toBe('development');
  });

  it('report a value that does not coerce, naming the variable and the key', () => {
    const err = configError({ env: { TASKER_SERVER_PORT: 'eighty', TASKER_SERVER_REFLECTION: 'maybe', TASKER_TEMPLATES_DIRS: 'a,b' } });
    expect(err.message).toContain('TASKER_SERVER_PORT: server.port: expected a number, got "eighty"');
    expect(err.message).toContain('TASKER_SERVER_REFLECTION: server.reflection: expected true or false, got "maybe"');
    expect(err.message).toContain('TASKER_TEMPLATES_DIRS: templates.dirs: expected JSON');
  });

  it('report a coerced value the schema refuses under the variable name', () => {
    const err = configError({ env: { TASKER_SERVER_PORT: '70000', TASKER_LOG_LEVEL: 'loud' } });
    expect(err.message).toContain('TASKER_SERVER_PORT: server.port: expected a number <= 65535, got 70000');
    expect(err.message).toContain('TASKER_LOG_LEVEL: log.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"');
  });
});

describe('file errors', () => {
  it('name the file and the path of an unknown key', () => {
    const root = rootWith({ 'config/tasker.yaml': `${OPEN}server:\n  prot: 80\n` });
    const err = configError({ cwd: root, env: {} });
    expect(err.message).toMatch(/^invalid configuration: config\/tasker\.yaml: server\.prot: expected a known key \(host, port, /);
    expect(err.message).toContain('got unknown key "prot"');
    expect(err.details).toEqual({ problems: [expect.stringContaining('server.prot')] });
  });

  it('name the file, the path and the expectation of a bad value', () => {
    const root = rootWith({
      'config/tasker.yaml': OPEN,
      'config/tasker.development.yaml': 'workers:\n  max_in_flight: lots\nauth:\n  tokens:\n    - name: a\n      token: short\n      roles: [boss]\n',
    });
    const err = configError({ cwd: root, env: {} });
    expect(err.message).toContain('config/tasker.development.yaml: workers.max_in_flight: expected a number, got "lots"');
    expect(err.message).toContain('config/tasker.development.yaml: auth.tokens.0.token: expected at least 16 character(s), got a string (not shown)');
    expect(err.message).toContain('config/tasker.development.yaml: auth.tokens.0.roles.0: expected one of worker, client, admin, got "boss"');
    expect(err.message).not.toContain('short');
  });

  it('report invalid YAML with the file name', () => {
    const root = rootWith({ 'config/tasker.yaml': 'server:\n  port: [1,\n' });
    expect(configError({ cwd: root, env: {} }).message).toMatch(/config\/tasker\.yaml: invalid YAML: /);
  });

  it('refuse auth enabled without tokens, saying how to fix it', () => {
    const root = rootWith({ 'config/tasker.yaml': 'environment: production\n' });
    const err = configError({ cwd: root, env: {} });
    expect(err.message).toContain('auth.tokens: expected at least one token while auth.enabled is true');
    expect(err.message).toContain('auth.enabled: false');
  });

  it('check keys that depend on each other', () => {
    const root = rootWith({ 'config/tasker.yaml': `${OPEN}workers:\n  heartbeat_interval_ms: 40000\nserver:\n  tls:\n    enabled: true\n` });
    const err = configError({ cwd: root, env: {} });
    expect(err.message).toContain('workers.lease_ms: expected more than workers.heartbeat_interval_ms (40000), got 30000');
    expect(err.message).toContain('server.tls.cert_file: expected a file path while server.tls.enabled is true, got null');
  });
});

describe('layering', () => {
  it('merges config/tasker.<environment>.yaml over the base, chosen by TASKER_ENV or the base file', () => {
    const root = rootWith({
      'config/tasker.yaml': `environment: staging\n${OPEN}server:\n  host: 0.0.0.0\n  port: 7000\n`,
      'config/tasker.staging.yaml': 'server:\n  port: 7001\nlog:\n  level: debug\n',
      'config/tasker.qa.yaml': 'server:\n  port: 7002\n',
    });
    const staging = loadConfig({ cwd: root, env: {} });
    expect(staging.environment).toBe('staging');
    expect(staging.server).toMatchObject({ host: '0.0.0.0', port: 7001 });
    expect(staging.log.level).toBe('debug');
    const qa = loadConfig({ cwd: root, env: { TASKER_ENV: 'qa' } });
    expect(qa.environment).toBe('qa');
    expect(qa.server).toMatchObject({ host: '0.0.0.0', port: 7002 });
    expect(qa.log.level).toBe('info');
  });

  it('applies TASKER_CONFIG, then --config files, then variables, then overrides', () => {
    const root = rootWith({
      'config/tasker.yaml': `${OPEN}server:\n  port: 1\n  host: base\n`,
      'extra.yaml': 'server:\n  port: 2\n  shutdown_grace_ms: 5\n',
      'more.yaml': 'server:\n  port: 3\n  max_receive_message_bytes: 2048\n',
    });
    const config = loadConfig({
      cwd: root,
      env: { TASKER_CONFIG: join(root, 'extra.yaml'), TASKER_SERVER_HOST: 'from-env', TASKER_SERVER_PORT: '4' },
      files: [join(root, 'more.yaml')],
      overrides: { server: { port: 5 } },
    });
    expect(config.server).toMatchObject({ host: 'from-env', port: 5, shutdown_grace_ms: 5, max_receive_message_bytes: 2048 });
  });

  it('refuses a missing TASKER_CONFIG file and a later file that changes the environment', () => {
    const root = rootWith({ 'config/tasker.yaml': OPEN, 'other.yaml': 'environment: production\n' });
    const missing = configError({ cwd: root, env: { TASKER_CONFIG: join(root, 'nope.yaml') } });
    expect(missing.message).toContain('TASKER_CONFIG');
    expect(missing.message).toContain('nope.yaml');
    const switched = configError({ cwd: root, env: {}, files: [join(root, 'other.yaml')] });
    expect(switched.message).toContain('other.yaml: environment: expected "development"');
  });
});

describe('auth tokens', () => {
  it('read token_env from the environment and allow that variable', () => {
    const root = rootWith({
      'config/tasker.yaml': 'auth:\n  tokens:\n    - name: ops\n      token_env: TASKER_OPS_TOKEN\n      roles: [admin]\n',
    });
    const config = loadConfig({ cwd: root, env: { TASKER_OPS_TOKEN: 'ops-secret-0123456789' } });
    expect(config.auth.tokens).toEqual([
      { name: 'ops', token: 'ops-secret-0123456789', token_env: 'TASKER_OPS_TOKEN', roles: ['admin'], namespaces: ['*'] },
    ]);
    const err = configError({ cwd: root, env: {} });
    expect(err.message).toContain('auth.tokens.0.token_env: expected the variable TASKER_OPS_TOKEN to hold the token, got nothing');
  });

  it('are redacted, with the database password, by redactConfig', () => {
    const config = loadConfig({
      env: { TASKER_ENV: 'test', TASKER_DATABASE_URL: 'postgres://tasker:hunter2@db:5432/tasker' },
    });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('test-worker-token');
    expect(shown).not.toContain('hunter2');
    expect(shown).toContain(REDACTED);
    expect(redactConfig(config).database.url).toContain('tasker:');
  });
});
