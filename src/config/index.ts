/** Tasker's configuration: the schema, its loader and helpers. */
export type { AuthToken, Config, ParsedConfig, Role } from './schema.js';
export { BACKOFF_KINDS, LOG_LEVELS, ROLES, configSchema } from './schema.js';
export type { ConfigOverrides, LoadConfigOptions } from './load.js';
export { loadConfig } from './load.js';
export { redactConfig, REDACTED } from './redact.js';
export { migrationsDir, projectRoot, protoDir, sqlDir } from './paths.js';
