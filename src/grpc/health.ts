/**
 * The standard `grpc.health.v1.Health` service (package grpc-health-check), with one
 * status for the server as a whole (`''`) and one per served service.
 */
import { HealthImplementation } from 'grpc-health-check';
import type { ServingStatus } from 'grpc-health-check';

/** Fully-qualified name of the health service. */
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** The health service of one server. */
export interface Health {
  /** Sets the status of the server (`''`) and of every service it was created with. */
  setAll(status: ServingStatus): void;
  /** The status currently reported for `service` (`''` = the server). */
  statusOf(service: string): ServingStatus | undefined;
  addToServer(server: Parameters<HealthImplementation['addToServer']>[0]): void;
}

/** A health service reporting NOT_SERVING until `setAll('SERVING')`. */
export function createHealth(serviceNames: readonly string[]): Health {
  const names = ['', ...serviceNames];
  const statuses = new Map<string, ServingStatus>(names.map((n) => [n, 'NOT_SERVING']));
  const impl = new HealthImplementation(Object.fromEntries(statuses));
  return {
    setAll(status) {
      for (const name of names) {
        statuses.set(name, status);
        impl.setStatus(name, status);
      }
    },
    statusOf: (service) => statuses.get(service),
    addToServer: (server) => impl.addToServer(server),
  };
}
