/**
 * The template aggregate (`task_templates`): one immutable row per
 * namespace/name@version, holding the template in document form.
 */
import { sql } from 'kysely';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';

/** A stored template version. */
export interface TemplateRow {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** The template document (snake_case, as in YAML). */
  readonly body: unknown;
  readonly bodyHash: string;
  readonly stepCount: number;
  readonly createdAt: Date;
}

/** A template version to store with {@link insertTemplate}. */
export interface NewTemplateRow {
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly bodyJson: string;
  readonly bodyHash: string;
  readonly stepCount: number;
  readonly now: Date;
}

interface Row {
  id: string;
  namespace: string;
  name: string;
  version: string;
  description: string;
  body: unknown;
  body_hash: string;
  step_count: number;
  created_at: Date;
}

const COLUMNS = sql`id, namespace, name, version, description, body, body_hash, step_count, created_at`;

function toTemplate(r: Row): TemplateRow {
  return {
    id: r.id,
    namespace: r.namespace,
    name: r.name,
    version: r.version,
    description: r.description,
    body: r.body,
    bodyHash: r.body_hash,
    stepCount: r.step_count,
    createdAt: r.created_at,
  };
}

/**
 * Stores a template version unless namespace/name@version exists. Returns the stored
 * row — the new one (`created: true`) or the existing one, whose hash the caller
 * compares. Race-safe: concurrent registrations of one version store one row.
 */
export async function insertTemplate(db: Executor, t: NewTemplateRow): Promise<{ created: boolean; row: TemplateRow }> {
  const { rows } = await sql<Row & { created: boolean }>`
    with ins as (
      insert into task_templates (id, namespace, name, version, description, body, body_hash, step_count, created_at)
      values (${t.id}::uuid, ${t.namespace}, ${t.name}, ${t.version}, ${t.description}, ${t.bodyJson}::jsonb,
              ${t.bodyHash}, ${t.stepCount}::int, ${t.now}::timestamptz)
      on conflict on constraint task_templates_ref_key do nothing
      returning ${COLUMNS}
    )
    select true as created, ${COLUMNS} from ins`.execute(db);
  if (rows[0]) return { created: true, row: toTemplate(rows[0]) };
  const existing = await findTemplateVersion(db, t.namespace, t.name, t.version);
  if (!existing) throw new Error(`template ${t.namespace}/${t.name}@${t.version} conflicted but cannot be read`);
  return { created: false, row: existing };
}

/** The stored namespace/name@version, or null. */
export async function findTemplateVersion(
  db: Executor,
  namespace: string,
  name: string,
  version: string,
): Promise<TemplateRow | null> {
  const { rows } = await sql<Row>`
    select ${COLUMNS} from task_templates
    where namespace = ${namespace} and name = ${name} and version = ${version}`.execute(db);
  return rows[0] ? toTemplate(rows[0]) : null;
}

/** The template row with id `id`, or null. */
export async function findTemplateById(db: Executor, id: string): Promise<TemplateRow | null> {
  const { rows } = await sql<Row>`select ${COLUMNS} from task_templates where id = ${id}::uuid`.execute(db);
  return rows[0] ? toTemplate(rows[0]) : null;
}

/** Every version of namespace/name, without bodies, oldest first. */
export async function listTemplateVersions(
  db: Executor,
  namespace: string,
  name: string,
): Promise<Array<{ version: string; createdAt: Date }>> {
  const { rows } = await sql<{ version: string; created_at: Date }>`${PREPARED}
    select version, created_at from task_templates where namespace = ${namespace} and name = ${name}
    order by created_at, version`.execute(db);
  return rows.map((r) => ({ version: r.version, createdAt: r.created_at }));
}

/** Every stored template version, optionally of one namespace, by namespace, name, creation. */
export async function listTemplates(db: Executor, options: { namespace?: string } = {}): Promise<TemplateRow[]> {
  const where = options.namespace ? sql`where namespace = ${options.namespace}` : sql``;
  const { rows } = await sql<Row>`
    select ${COLUMNS} from task_templates ${where} order by namespace, name, created_at, version`.execute(db);
  return rows.map(toTemplate);
}
