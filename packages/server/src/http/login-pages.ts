import { randomBytes } from "node:crypto";
import type { HttpResponse } from "../net/node-http.js";

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** Who a page is for. */
export interface PageUser {
  readonly principalId: string;
  /** The verified email, or "". */
  readonly email: string;
  /** The name the provider gave, or "". */
  readonly name: string;
}

const STYLE =
  "body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5}code{background:#eee;padding:0 .2em}button{font-size:1em}";

function page(
  title: string,
  body: string,
  scriptNonce?: string,
  formAction?: string,
): { html: string; csp: string } {
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body>
${body}
</body></html>
`;
  const csp = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    scriptNonce ? `script-src 'nonce-${scriptNonce}'` : "script-src 'none'",
    `form-action 'self'${formAction ? ` ${formAction}` : ""}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
  return { html, csp };
}

function send(res: HttpResponse, status: number, p: { html: string; csp: string }): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": String(Buffer.byteLength(p.html)),
    "content-security-policy": p.csp,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    // Not no-referrer: that makes browsers send "Origin: null" with the log-out form.
    "referrer-policy": "same-origin",
  });
  res.end(p.html);
}

function who(u: PageUser): string {
  const label = u.name && u.email ? `${u.name} (${u.email})` : u.email || u.name || "principal";
  return `<p id="who">Signed in as <strong>${esc(label)}</strong>, principal <code>${esc(u.principalId)}</code>.</p>`;
}

const LOGOUT_FORM =
  '<form method="post" action="/_/oidc/logout"><button type="submit" id="logout">Log out</button></form>';

/**
 * The landing page of a browser login: who the user is, links to the CLI config download and to
 * their files, a log-out button; with a CLI waiting (`port`), a button that hands it a login.
 */
export function sendLandingPage(
  res: HttpResponse,
  user: PageUser,
  cli: { port: number; state: string } | undefined,
): void {
  const cliForm = cli
    ? `<form method="post" action="/_/v0/provision">
<input type="hidden" name="port" value="${cli.port}"><input type="hidden" name="state" value="${esc(cli.state)}">
<p>A <code>cacheroach auth login</code> is waiting on this computer (port ${cli.port}).
<button type="submit" id="send-cli">Log the CLI in</button></p></form>`
    : "";
  send(
    res,
    200,
    page(
      "cacheroach: signed in",
      `<h1>cacheroach</h1>
${who(user)}
${cliForm}
<ul>
<li><a href="/_/v0/config" id="config">Download a CLI configuration</a> (save it as <code>~/.cacheroach/config</code>), or run <code>cacheroach auth login &lt;this server's URL&gt;</code>.</li>
<li><a href="/" id="files">Your files</a></li>
</ul>
<p>Check who the CLI acts as with <code>cacheroach auth whoami</code>.</p>
${LOGOUT_FORM}`,
    ),
  );
}

/**
 * The page that hands a CLI its login: an automatically submitted form posting the CLI config
 * (with its token) and the CLI's state to http://127.0.0.1:<port>/, the CLI's own listener.
 */
export function sendCliHandoffPage(
  res: HttpResponse,
  user: PageUser,
  cli: { port: number; state: string },
  config: unknown,
): void {
  const nonce = randomBytes(16).toString("base64");
  const target = `http://127.0.0.1:${cli.port}/`;
  send(
    res,
    200,
    page(
      "cacheroach: logging in the CLI",
      `<h1>cacheroach</h1>
${who(user)}
<form method="post" action="${target}" id="handoff">
<input type="hidden" name="state" value="${esc(cli.state)}">
<input type="hidden" name="config" value="${esc(JSON.stringify(config))}">
<p>Handing the login to the CLI waiting on port ${cli.port}… If nothing happens, <button type="submit">send it</button>.</p>
</form>
<script nonce="${nonce}">document.getElementById("handoff").submit();</script>`,
      nonce,
      target,
    ),
  );
}

/** The answer to a log-out. */
export function sendLoggedOutPage(res: HttpResponse, revoked: boolean): void {
  send(
    res,
    200,
    page(
      "cacheroach: logged out",
      `<h1>cacheroach</h1><p id="logged-out">${revoked ? "You are logged out: this browser's session is revoked." : "This browser had no session."}</p>
<p><a href="/_/v0/provision">Log in again</a></p>`,
    ),
  );
}
