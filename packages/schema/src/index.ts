/** SQL schema of cacheroach: forward-only numbered migrations and the runner that applies them. */

export type { MigrateOptions, MigrateResult, Migration, MigrationErrorCode } from "./migrate.js";
export { loadMigrations, MIGRATIONS_DIR, MigrationError, migrate } from "./migrate.js";
