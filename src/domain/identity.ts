/**
 * Task identity: the key that makes a repeated CreateTask return the task that already
 * exists instead of creating another. The store keeps it in `tasks.identity_key`,
 * unique per template `namespace/name`; because the key hashes the full
 * `namespace/name@version`, different versions never share a key.
 *
 * The rule, per strategy:
 * - an idempotency key given by the caller always wins, whatever the strategy:
 *   key = sha256(templateKey + "\0" + idempotencyKey). So `strict` and `always_unique`
 *   callers can still make one particular request idempotent;
 * - otherwise `strict`: key = sha256(templateKey + canonicalJson(context)), so the
 *   same context (in any key order) is the same task;
 * - otherwise `caller_provided`: refused with ValidationError `IDEMPOTENCY_KEY_REQUIRED`;
 * - otherwise `always_unique`: no key (null), every creation is a new task.
 *
 * The two hash forms cannot collide: canonical JSON never starts with "\0".
 */
import { canonicalJson, sha256Hex } from './canonical-json.js';
import { ValidationError } from './errors.js';
import { IdentityStrategy, templateKey, type TemplateRef } from './template.js';

/** Stable error code when a `caller_provided` template gets no idempotency key. */
export const IDEMPOTENCY_KEY_REQUIRED = 'IDEMPOTENCY_KEY_REQUIRED';

/** What identifies one task creation request. */
export interface IdentityInput {
  readonly strategy: IdentityStrategy;
  readonly template: TemplateRef;
  /** The task context (a JSON value; for `strict` it must be one, or ValidationError). */
  readonly context: unknown;
  /** The caller's idempotency key; null, undefined and "" mean none. */
  readonly idempotencyKey?: string | null;
}

/** The identity of a task: null when every creation is unique. */
export interface TaskIdentity {
  /** sha256 hex, or null for `always_unique` without an idempotency key. */
  readonly identityKey: string | null;
}

/** Computes the identity key of a task creation request (rules in the file comment). */
export function computeIdentity(input: IdentityInput): TaskIdentity {
  const key = templateKey(input.template);
  const idempotencyKey = input.idempotencyKey ?? '';
  if (idempotencyKey !== '') {
    return { identityKey: sha256Hex(`${key}\0${idempotencyKey}`) };
  }
  switch (input.strategy) {
    case IdentityStrategy.Strict:
      return { identityKey: sha256Hex(key + canonicalJson(input.context)) };
    case IdentityStrategy.CallerProvided:
      throw new ValidationError(
        `template ${key} uses identity strategy caller_provided: an idempotency key is required`,
        [{ path: '/idempotency_key', message: 'required by identity strategy caller_provided' }],
        IDEMPOTENCY_KEY_REQUIRED,
      );
    case IdentityStrategy.AlwaysUnique:
      return { identityKey: null };
  }
  throw new ValidationError(`unknown identity strategy ${JSON.stringify(input.strategy)}`, [
    { path: '/identity_strategy', message: `unknown identity strategy ${JSON.stringify(input.strategy)}` },
  ]);
}
