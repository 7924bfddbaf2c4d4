/** Values the integration/e2e global setup hands to test files through `inject()`. */
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test PostgreSQL server (database `postgres`). */
    pgAdminUrl: string;
    /** Database migrated with the current migrations/ and sql/, cloned per test database. */
    pgTemplateDb: string;
  }
}
