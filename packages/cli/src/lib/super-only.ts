/**
 * Commands only a super session may run tell a session that is not one so at once, rather than
 * first asking for a confirmation the server would make pointless.
 */
import type { Session } from "@cacheroach/proto";
import { superSessionRequired } from "./errors.js";

/** Throws the usual "needs a super session" refusal (exit 3) unless `session` is super. */
export function requireSuperSession(session: Session, command: string): void {
  if (session.scope?.kind.case === "superToken") return;
  throw superSessionRequired(`\`cacheroach ${command}\` needs a super session`);
}
