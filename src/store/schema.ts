/** Kysely table types for Tasker's schema (filled in alongside migrations/0001). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface DB {}
