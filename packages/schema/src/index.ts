/** SQL schema of cacheroach: forward-only numbered migrations and the runner that applies them. */
export { loadMigrations, migrate, MigrationError, MIGRATIONS_DIR } from "./migrate.js";
export type { MigrateOptions, MigrateResult, Migration, MigrationErrorCode } from "./migrate.js";
