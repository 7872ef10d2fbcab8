import { createContextKey } from "@connectrpc/connect";
import type { SessionInfo } from "./session.js";

/** The caller's session, set by the authentication interceptor (undefined: anonymous). */
export const kSession = createContextKey<SessionInfo | undefined>(undefined, {
  description: "cacheroach session",
});
/** The caller's raw bearer token (handlers that mint URLs under it need it). */
export const kToken = createContextKey<string | undefined>(undefined, { description: "cacheroach token" });
