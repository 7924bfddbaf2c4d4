/** A copy of the effective configuration that is safe to print or log. */
import type { Config } from './schema.js';

/** The text printed in place of a secret. */
export const REDACTED = '[redacted]';

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = REDACTED;
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|secret|key|token/i.test(key)) parsed.searchParams.set(key, REDACTED);
    }
    return parsed.toString();
  } catch {
    return REDACTED;
  }
}

/** `config` with token secrets and the database password replaced by {@link REDACTED}. */
export function redactConfig(config: Config): Config {
  return {
    ...config,
    database: { ...config.database, url: config.database.url === null ? null : redactUrl(config.database.url) },
    auth: {
      ...config.auth,
      tokens: config.auth.tokens.map((t) => ({ ...t, token: REDACTED })),
    },
  };
}
