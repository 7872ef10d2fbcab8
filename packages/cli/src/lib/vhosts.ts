/** Host names for vhost commands, checked like the server does. */
import { ExitCode, UserError } from "./errors.js";

const HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Lower-cases and checks a host name (no scheme, no port) or "*". */
export function checkHost(text: string): string {
  const h = text.trim().toLowerCase();
  if (h === "*") return h;
  if (h.length > 0 && h.length <= 253 && HOST.test(h)) return h;
  let hint = 'a host name like files.example.com, or "*" for every other host';
  const m = /^(?:[a-z]+:\/\/)?([^/:]+)(?::\d+)?\/?$/.exec(h);
  if (m?.[1] && m[1] !== h && HOST.test(m[1])) hint = `without scheme or port: ${m[1]}`;
  throw new UserError(`"${text}" is not a host name`, ExitCode.usage, [hint]);
}
