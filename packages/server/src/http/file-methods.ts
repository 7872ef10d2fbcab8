import { handleDelete } from "./handlers/delete.js";
import { handleGet, handleHead } from "./handlers/get.js";
import { handlePost, handlePut } from "./handlers/put.js";
import type { RequestContext } from "./request-context.js";

/** Answers one method on a tenant's file path. */
export type MethodHandler = (ctx: RequestContext) => Promise<void>;

/** OPTIONS: the methods a file path answers. */
export async function handleOptions(ctx: RequestContext): Promise<void> {
  ctx.res.writeHead(204, { allow: ALLOW });
  ctx.res.end();
}

/** Every method a tenant's file path answers, with its handler (one file per method in handlers/). */
const HANDLERS: Readonly<Record<string, MethodHandler>> = {
  GET: handleGet,
  HEAD: handleHead,
  PUT: handlePut,
  POST: handlePost,
  DELETE: handleDelete,
  OPTIONS: handleOptions,
};

/** The Allow header of file paths. */
export const ALLOW = Object.keys(HANDLERS).join(", ");

/** The handler of a method on file paths, or undefined (405). */
export function handlerFor(method: string | undefined): MethodHandler | undefined {
  return method !== undefined && Object.hasOwn(HANDLERS, method) ? HANDLERS[method] : undefined;
}
