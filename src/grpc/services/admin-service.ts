/**
 * AdminService: operator views of worker sessions, system counts, analytics and a
 * step's audit trail. Every rpc needs the `admin` role; what names a task (a step's
 * audit, the slowest tasks and steps) is limited to the namespaces the token covers.
 */
import type { Clock } from '../../domain/clock.js';
import { NotFoundError } from '../../domain/errors.js';
import type { TaskQueries } from '../../engine/queries.js';
import type { TaskManager } from '../../engine/task-manager.js';
import { AdminServiceService } from '../../gen/tasker/v1/admin.js';
import type * as pb from '../../gen/tasker/v1/admin.js';
import { canAccessNamespace } from '../auth.js';
import type { RpcHandlers } from '../handlers.js';
import { analyticsToProto, systemHealthToProto, transitionToProto, workerSessionToProto } from '../mappers/admin.js';
import type { GrpcServiceRegistration } from '../server.js';

/** Fully-qualified name of the service. */
export const ADMIN_SERVICE_NAME = 'tasker.v1.AdminService';

/** What the service needs. */
export interface AdminServiceDeps {
  readonly handlers: RpcHandlers;
  readonly queries: TaskQueries;
  readonly tasks: TaskManager;
  readonly clock: Clock;
}

/** The registration of AdminService for the gRPC server. */
export function createAdminService(deps: AdminServiceDeps): GrpcServiceRegistration {
  const { handlers, queries } = deps;
  return {
    name: ADMIN_SERVICE_NAME,
    definition: AdminServiceService,
    implementation: {
      listWorkers: handlers.unary<pb.ListWorkersRequest, pb.ListWorkersResponse>('admin', async (req, ctx) => {
        if (req.namespace) ctx.authorize(req.namespace);
        const sessions = await queries.listWorkers({
          includeExpired: req.includeExpired,
          namespace: req.namespace || null,
          handler: req.handler || null,
        });
        const now = deps.clock.now();
        return { sessions: sessions.map((s) => workerSessionToProto(s, now)) };
      }),

      getSystemHealth: handlers.unary<pb.GetSystemHealthRequest, pb.GetSystemHealthResponse>('admin', async () => ({
        health: systemHealthToProto(await queries.getSystemHealth()),
      })),

      getAnalytics: handlers.unary<pb.GetAnalyticsRequest, pb.GetAnalyticsResponse>('admin', async (req, ctx) => {
        const analytics = await queries.getAnalytics({ since: req.since ?? null, limit: req.limit });
        return analyticsToProto(analytics, (namespace) => canAccessNamespace(ctx.principal, namespace));
      }),

      getStepAudit: handlers.unary<pb.GetStepAuditRequest, pb.GetStepAuditResponse>('admin', async (req, ctx) => {
        const transitions = await queries.getStepAudit(req.stepId);
        const taskId = transitions[0]?.taskId;
        if (!taskId) throw new NotFoundError('step', req.stepId);
        ctx.authorize((await deps.tasks.getTask(taskId)).namespace);
        return { transitions: transitions.map(transitionToProto) };
      }),
    },
  };
}
