/**
 * Bearer-token authentication and role/namespace authorization for gRPC calls.
 * Tokens come from `config.auth.tokens`; only their sha256 digests are kept, and an
 * incoming token's digest is compared with every configured digest in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import type { Config, Role } from '../config/schema.js';
import { ROLES } from '../config/schema.js';
import { PermissionDeniedError, UnauthenticatedError } from '../domain/errors.js';

/** Who is calling: the configured token's name, its roles and its namespaces (`*` = all). */
export interface Principal {
  readonly name: string;
  readonly roles: readonly Role[];
  readonly namespaces: readonly string[];
}

/** The principal of every call when auth is disabled (development only). */
export const DEVELOPMENT_PRINCIPAL: Principal = Object.freeze({
  name: 'development (auth disabled)',
  roles: Object.freeze([...ROLES]),
  namespaces: Object.freeze(['*']),
});

/** Turns call metadata into a {@link Principal}. */
export interface Authenticator {
  /** Whether tokens are checked (false only when `auth.enabled: false`). */
  readonly enabled: boolean;
  /** The caller's principal; throws `UnauthenticatedError` for a missing or unknown token. */
  authenticate(metadata: Metadata): Principal;
}

interface Entry {
  readonly digest: Buffer;
  readonly principal: Principal;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The bearer token in `authorization` metadata, or null when there is none. */
export function bearerToken(metadata: Metadata): string | null {
  const values = metadata.get('authorization');
  if (values.length === 0) return null;
  const header = values[0];
  const text = typeof header === 'string' ? header : header?.toString('utf8') ?? '';
  const match = BEARER.exec(text);
  if (!match?.[1]) {
    throw new UnauthenticatedError('malformed authorization metadata: expected "Bearer <token>"');
  }
  return match[1];
}

/** Builds the authenticator for `config.auth`. */
export function createAuthenticator(config: Config['auth']): Authenticator {
  if (!config.enabled) {
    return { enabled: false, authenticate: () => DEVELOPMENT_PRINCIPAL };
  }
  const entries: Entry[] = config.tokens.map((t) => ({
    digest: digest(t.token),
    principal: Object.freeze({ name: t.name, roles: Object.freeze([...t.roles]), namespaces: Object.freeze([...t.namespaces]) }),
  }));
  return {
    enabled: true,
    authenticate(metadata: Metadata): Principal {
      const token = bearerToken(metadata);
      if (token === null) {
        throw new UnauthenticatedError('missing credentials: send "authorization: Bearer <token>" metadata');
      }
      const presented = digest(token);
      let found: Principal | null = null;
      // Every digest is compared, so the time taken does not depend on which token matched.
      for (const entry of entries) {
        if (timingSafeEqual(entry.digest, presented) && found === null) found = entry.principal;
      }
      if (found === null) throw new UnauthenticatedError('invalid bearer token');
      return found;
    },
  };
}

/** Whether `principal` holds `role` (`admin` satisfies every role). */
export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.includes(role) || principal.roles.includes('admin');
}

/** Whether `principal` may act in `namespace`. */
export function canAccessNamespace(principal: Principal, namespace: string): boolean {
  return principal.namespaces.includes('*') || principal.namespaces.includes(namespace);
}

/**
 * Throws `PermissionDeniedError` unless `principal` holds `role` and, when
 * `namespace` is given, may act in it.
 */
export function requireRole(principal: Principal, role: Role, namespace?: string): void {
  if (!hasRole(principal, role)) {
    throw new PermissionDeniedError(`token "${principal.name}" lacks the ${role} role`, { role, principal: principal.name });
  }
  if (namespace !== undefined && !canAccessNamespace(principal, namespace)) {
    throw new PermissionDeniedError(`token "${principal.name}" may not act in namespace "${namespace}"`, {
      namespace,
      principal: principal.name,
    });
  }
}
