import { pino } from "pino";

/** The server's structured logger (pino). Never log tokens, keys or request bodies. */
export type Logger = pino.Logger;

/** Levels accepted by the `--log-level` setting. */
export { LOG_LEVELS } from "./settings.js";

/** Creates the process logger writing JSON lines to stderr. */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: undefined,
      // Belt and braces: these fields never reach the log even if a caller passes them.
      redact: {
        paths: ["token", "jwt", "authorization", "*.authorization", "signingKey", "password"],
        censor: "[redacted]",
      },
    },
    pino.destination(2),
  );
}
