import { hostname } from "node:os";
import type { Diags } from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Db } from "../db/db.js";

/** Headers whose values are credentials and never echoed. */
const REDACTED = new Set(["authorization", "cookie", "set-cookie", "proxy-authorization"]);

/** The Diags service (super only): who answered and what arrived, without secrets or environment. */
export function createDiagsService(db: Db, version: string): ServiceImpl<typeof Diags> {
  return {
    async echo(_req, ctx: HandlerContext) {
      const headers: Record<string, { values: string[] }> = {};
      ctx.requestHeader.forEach((value, key) => {
        const v = REDACTED.has(key.toLowerCase()) ? "[redacted]" : value;
        const entry = headers[key] ?? { values: [] };
        entry.values.push(v);
        headers[key] = entry;
      });
      return { hostname: hostname(), version, requestHeaders: headers, databaseVersion: await db.ping() };
    },
  };
}
