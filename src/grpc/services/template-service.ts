/**
 * TemplateService: register, read, list and validate task templates. Thin: the rules
 * live in the domain (`template-document.ts`, `template-validation.ts`) and the
 * registry (`engine/template-registry.ts`); this file checks the caller's namespace
 * and converts messages (`mappers/template.ts`).
 */
import type { Kysely } from 'kysely';
import { ValidationError } from '../../domain/errors.js';
import { parseTemplateDocument } from '../../domain/template-document.js';
import { compareVersions, isPrerelease } from '../../engine/template-registry.js';
import type { TemplateRegistry } from '../../engine/template-registry.js';
import { TemplateServiceService } from '../../gen/tasker/v1/template.js';
import type {
  GetTemplateRequest,
  GetTemplateResponse,
  ListTemplatesRequest,
  ListTemplatesResponse,
  RegisterTemplateRequest,
  RegisterTemplateResponse,
  ValidateTemplateRequest,
  ValidateTemplateResponse,
} from '../../gen/tasker/v1/template.js';
import type { DB } from '../../store/schema.js';
import { listTemplates } from '../../store/templates.js';
import type { TemplateRow } from '../../store/templates.js';
import { canAccessNamespace } from '../auth.js';
import type { RpcHandlers } from '../handlers.js';
import type { TemplateMapping } from '../mappers/template.js';
import { templateFromProto, templateToProto, violationsToProto } from '../mappers/template.js';
import type { GrpcServiceRegistration } from '../server.js';

/** Fully-qualified name of the service. */
export const TEMPLATE_SERVICE_NAME = 'tasker.v1.TemplateService';

/** What the service needs. */
export interface TemplateServiceDeps {
  readonly handlers: RpcHandlers;
  readonly registry: TemplateRegistry;
  /** For listing stored versions with their registration times. */
  readonly db: Kysely<DB>;
  readonly mapping: TemplateMapping;
}

/** The most recently registered version of each namespace/name, by the registry's rule (highest release). */
function latestOfEach(rows: readonly TemplateRow[]): TemplateRow[] {
  const best = new Map<string, TemplateRow>();
  for (const row of rows) {
    const key = `${row.namespace}/${row.name}`;
    const current = best.get(key);
    if (!current) {
      best.set(key, row);
      continue;
    }
    const preferRelease = Number(isPrerelease(current.version)) - Number(isPrerelease(row.version));
    const byVersion = compareVersions(row.version, current.version);
    if (preferRelease > 0 || (preferRelease === 0 && (byVersion > 0 || (byVersion === 0 && row.createdAt >= current.createdAt)))) {
      best.set(key, row);
    }
  }
  return rows.filter((row) => best.get(`${row.namespace}/${row.name}`) === row);
}

/** The registration of TemplateService for the gRPC server. */
export function createTemplateService(deps: TemplateServiceDeps): GrpcServiceRegistration {
  const { handlers, registry, mapping } = deps;
  return {
    name: TEMPLATE_SERVICE_NAME,
    definition: TemplateServiceService,
    implementation: {
      registerTemplate: handlers.unary<RegisterTemplateRequest, RegisterTemplateResponse>('client', async (req, ctx) => {
        if (req.template?.namespace) ctx.authorize(req.template.namespace);
        const template = templateFromProto(req.template, mapping);
        ctx.authorize(template.namespace);
        const { created } = await registry.register(template);
        const stored = await registry.resolve(template);
        return { template: templateToProto(stored.template, stored), created };
      }),

      getTemplate: handlers.unary<GetTemplateRequest, GetTemplateResponse>('client', async (req, ctx) => {
        const ref = req.template;
        if (!ref?.namespace || !ref.name) {
          throw new ValidationError('GetTemplate needs a template reference (namespace and name)', [
            { path: '/template', message: 'namespace and name are required' },
          ]);
        }
        ctx.authorize(ref.namespace);
        const stored = await registry.resolve({ namespace: ref.namespace, name: ref.name, version: ref.version || null });
        return { template: templateToProto(stored.template, stored) };
      }),

      listTemplates: handlers.unary<ListTemplatesRequest, ListTemplatesResponse>('client', async (req, ctx) => {
        if (req.namespace) ctx.authorize(req.namespace);
        const rows = (await listTemplates(deps.db, req.namespace ? { namespace: req.namespace } : {})).filter(
          (row) => (!req.name || row.name === req.name) && canAccessNamespace(ctx.principal, row.namespace),
        );
        const chosen = req.allVersions ? rows : latestOfEach(rows);
        return {
          templates: chosen.map((row) => templateToProto(parseTemplateDocument(row.body, mapping.defaults), row)),
        };
      }),

      validateTemplate: handlers.unary<ValidateTemplateRequest, ValidateTemplateResponse>('client', async (req, ctx) => {
        if (req.template?.namespace) ctx.authorize(req.template.namespace);
        try {
          templateFromProto(req.template, mapping);
          return { valid: true, violations: [] };
        } catch (err) {
          if (err instanceof ValidationError) return { valid: false, violations: violationsToProto(err.violations) };
          throw err;
        }
      }),
    },
  };
}
