/**
 * Administration for super sessions: tenants, principals, sessions (grant, revoke) and virtual
 * hosts, each through the same RPCs the CLI's tenant/principal/session/vhost commands use.
 */
import type { Capabilities, Principal, Session, Tenant, VHost } from "@cacheroach/proto";
import { SessionStatus } from "@cacheroach/proto";
import { useCallback, useEffect, useState } from "preact/hooks";
import { describe, type Problem } from "../api/errors.js";
import type { Login } from "../auth/login-state.js";
import { formatTime } from "./format.js";
import { useLatestOnly } from "./latest-only.js";
import { Modal } from "./modal.js";
import { ProblemView } from "./problem-view.js";
import type { AdminSection } from "./route.js";

interface Props {
  login: Login;
  section: AdminSection;
  onTenantsChanged: () => void;
}

const TITLES: Record<AdminSection, string> = {
  tenants: "Tenants",
  principals: "Principals",
  sessions: "Sessions",
  vhosts: "Virtual hosts",
};

/** Runs an action and reports its failure in words. */
function useAction(): [
  Problem | undefined,
  (doing: string, fn: () => Promise<void>) => Promise<void>,
  () => void,
] {
  const [problem, setProblem] = useState<Problem>();
  const run = useCallback(async (doing: string, fn: () => Promise<void>) => {
    setProblem(undefined);
    try {
      await fn();
    } catch (err) {
      setProblem(describe(doing, err));
    }
  }, []);
  return [problem, run, () => setProblem(undefined)];
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of stream) out.push(x);
  return out;
}

export function AdminView({ login, section, onTenantsChanged }: Props) {
  return (
    <section class="admin" aria-label="Administration">
      <nav class="tabs" aria-label="Administration sections">
        {(Object.keys(TITLES) as AdminSection[]).map((s) => (
          <a key={s} href={`#/admin/${s}`} aria-current={s === section ? "page" : undefined}>
            {TITLES[s]}
          </a>
        ))}
      </nav>
      <h1>{TITLES[section]}</h1>
      {section === "tenants" && <TenantsAdmin login={login} onChanged={onTenantsChanged} />}
      {section === "principals" && <PrincipalsAdmin login={login} />}
      {section === "sessions" && <SessionsAdmin login={login} />}
      {section === "vhosts" && <VHostsAdmin login={login} />}
    </section>
  );
}

function TenantsAdmin({ login, onChanged }: { login: Login; onChanged: () => void }) {
  const { api } = login;
  const [tenants, setTenants] = useState<Tenant[]>();
  const [label, setLabel] = useState("");
  const [doomed, setDoomed] = useState<Tenant>();
  const [problem, run, dismiss] = useAction();
  const load = useCallback(
    () => run("Listing tenants", async () => setTenants(await collect(api.tenants.list({})))),
    [api, run],
  );
  useEffect(() => void load(), [load]);
  return (
    <>
      {problem && <ProblemView problem={problem} onDismiss={dismiss} />}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void run(`Creating tenant ${label}`, async () => {
            await api.tenants.ensure({ tenant: { label: label.trim() } });
            setLabel("");
            await load();
            onChanged();
          });
        }}
      >
        <label for="tenant-label">New tenant</label>
        <input
          id="tenant-label"
          value={label}
          placeholder="label"
          onInput={(e) => setLabel(e.currentTarget.value)}
        />
        <button type="submit" class="primary" disabled={label.trim() === ""}>
          Create
        </button>
      </form>
      <table class="listing">
        <thead>
          <tr>
            <th scope="col">Label</th>
            <th scope="col">ID</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {tenants?.map((t) => (
            <tr key={t.id}>
              <td>
                <a href={`#/files/${t.id}/`}>{t.label}</a>
              </td>
              <td>
                <code>{t.id}</code>
              </td>
              <td>
                <button type="button" class="small danger" onClick={() => setDoomed(t)}>
                  Delete…
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {doomed && (
        <Modal title="Delete tenant?" onClose={() => setDoomed(undefined)}>
          <p>
            Delete <strong>{doomed.label}</strong> and <em>all its files</em>? Its virtual hosts are removed
            and its sessions revoked at once; its data is purged by garbage collection.
          </p>
          <div class="actions">
            <button
              type="button"
              class="danger"
              onClick={() =>
                run(`Deleting tenant ${doomed.label}`, async () => {
                  await api.tenants.ensure({
                    tenant: { id: doomed.id, version: doomed.version },
                    delete: true,
                  });
                  setDoomed(undefined);
                  await load();
                  onChanged();
                })
              }
            >
              Delete tenant
            </button>
            <button type="button" onClick={() => setDoomed(undefined)}>
              Cancel
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}

function PrincipalsAdmin({ login }: { login: Login }) {
  const { api } = login;
  const [principals, setPrincipals] = useState<Principal[]>();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [doomed, setDoomed] = useState<Principal>();
  const [problem, run, dismiss] = useAction();
  const load = useCallback(
    () => run("Listing principals", async () => setPrincipals(await collect(api.principals.list({})))),
    [api, run],
  );
  useEffect(() => void load(), [load]);
  return (
    <>
      {problem && <ProblemView problem={problem} onDismiss={dismiss} />}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          const claims: Record<string, unknown> = { name: name.trim(), source: "web ui" };
          if (email.trim()) Object.assign(claims, { email: email.trim(), email_verified: true });
          void run(`Creating principal ${name}`, async () => {
            await api.principals.ensure({ principal: { claimsJson: JSON.stringify(claims) } });
            setName("");
            setEmail("");
            await load();
          });
        }}
      >
        <label for="principal-name">New principal</label>
        <input
          id="principal-name"
          value={name}
          placeholder="name"
          onInput={(e) => setName(e.currentTarget.value)}
        />
        <input
          aria-label="Verified email (optional)"
          value={email}
          type="email"
          placeholder="email (optional)"
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
        <button type="submit" class="primary" disabled={name.trim() === ""}>
          Create
        </button>
      </form>
      <table class="listing">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email or domain</th>
            <th scope="col">ID</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {principals?.map((p) => (
            <tr key={p.id}>
              <td>{p.label}</td>
              <td>{p.emailDomain ? `*@${p.emailDomain}` : p.email}</td>
              <td>
                <code>{p.id}</code>
              </td>
              <td>
                <a class="small" href={`#/admin/sessions?owner=${p.id}`}>
                  Sessions
                </a>{" "}
                <button type="button" class="small danger" onClick={() => setDoomed(p)}>
                  Delete…
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {doomed && (
        <Modal title="Delete principal?" onClose={() => setDoomed(undefined)}>
          <p>
            Delete <strong>{doomed.label}</strong>? Its sessions, and everything they issued, are revoked.
          </p>
          <div class="actions">
            <button
              type="button"
              class="danger"
              onClick={() =>
                run(`Deleting principal ${doomed.label}`, async () => {
                  await api.principals.ensure({
                    principal: { id: doomed.id, version: doomed.version },
                    delete: true,
                  });
                  setDoomed(undefined);
                  await load();
                })
              }
            >
              Delete principal
            </button>
            <button type="button" onClick={() => setDoomed(undefined)}>
              Cancel
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}

const CAPS: readonly (keyof Omit<Capabilities, "$typeName" | "$unknown">)[] = [
  "read",
  "write",
  "delegate",
  "pii",
  "fetch",
];

function capsText(c: Capabilities | undefined): string {
  return CAPS.filter((k) => c?.[k]).join(", ") || "none";
}

function scopeText(s: Session["scope"]): string {
  const k = s?.kind;
  if (!k || k.case === undefined) return "—";
  if (k.case === "superToken") return "super";
  if (k.case === "onPrincipal") return `principal ${k.value}`;
  return `${k.value.tenantId} ${k.value.path}${k.value.version ? ` v${k.value.version}` : ""}`;
}

function SessionsAdmin({ login }: { login: Login }) {
  const { api } = login;
  const initialOwner = new URLSearchParams(location.hash.split("?")[1] ?? "").get("owner") ?? "";
  const [principals, setPrincipals] = useState<Principal[]>([]);
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [owner, setOwner] = useState(initialOwner || login.session.principalId);
  const [all, setAll] = useState(false);
  const [sessions, setSessions] = useState<Session[]>();
  const [grant, setGrant] = useState({ tenantId: "", path: "/*", caps: new Set(["read"]), days: 30 });
  const [issued, setIssued] = useState<{ session: Session; jwt: string }>();
  const [problem, run, dismiss] = useAction();
  useEffect(() => {
    void run("Listing principals and tenants", async () => {
      setPrincipals(await collect(api.principals.list({})));
      const ts = await collect(api.tenants.list({}));
      setTenants(ts);
      setGrant((g) => ({ ...g, tenantId: g.tenantId || ts[0]?.id || "" }));
    });
  }, [api, run]);
  // Another principal may be chosen while one's sessions load: only the newest answer shows.
  const requests = useLatestOnly();
  const load = useCallback(() => {
    const isNewest = requests.take();
    return run("Listing sessions", async () => {
      const found = await collect(api.tokens.find({ owner, includeInactive: all }));
      if (isNewest()) setSessions(found);
    });
  }, [api, run, owner, all, requests]);
  useEffect(() => void load(), [load]);
  const toggleCap = (c: string, on: boolean) => {
    const caps = new Set(grant.caps);
    if (on) caps.add(c);
    else caps.delete(c);
    setGrant({ ...grant, caps });
  };
  return (
    <>
      {problem && <ProblemView problem={problem} onDismiss={dismiss} />}
      <div class="row">
        <label for="session-owner">Principal</label>
        <select id="session-owner" value={owner} onChange={(e) => setOwner(e.currentTarget.value)}>
          {!principals.some((p) => p.id === owner) && <option value={owner}>{owner}</option>}
          {principals.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
        </select>
        <label class="check">
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
          Include revoked and expired
        </label>
      </div>
      <form
        class="grant"
        aria-label="Grant"
        onSubmit={(e) => {
          e.preventDefault();
          void run("Granting", async () => {
            const capabilities = Object.fromEntries(CAPS.map((c) => [c, grant.caps.has(c)]));
            const expires = Math.floor(Date.now() / 1000) + grant.days * 86400;
            const r = await api.tokens.issue({
              template: {
                principalId: owner,
                capabilities,
                scope: {
                  kind: { case: "onLocation", value: { tenantId: grant.tenantId, path: grant.path } },
                },
                expiresAt: { seconds: BigInt(expires) },
                note: "granted in the web UI",
              },
              capExpiry: true,
            });
            setIssued({ session: r.issued!, jwt: r.token?.jwt ?? "" });
            await load();
          });
        }}
      >
        <h2>Grant to this principal</h2>
        <label>
          Tenant{" "}
          <select
            value={grant.tenantId}
            onChange={(e) => setGrant({ ...grant, tenantId: e.currentTarget.value })}
          >
            {tenants.map((t) => (
              <option key={t.id} value={t.id}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Path{" "}
          <input
            value={grant.path}
            aria-describedby="grant-path-hint"
            onInput={(e) => setGrant({ ...grant, path: e.currentTarget.value })}
          />
        </label>
        <span id="grant-path-hint" class="hint">
          "/*" is the whole tenant, "/dir/*" everything below /dir, else one exact path.
        </span>
        <fieldset>
          <legend>Capabilities</legend>
          {CAPS.map((c) => (
            <label key={c} class="check">
              <input
                type="checkbox"
                checked={grant.caps.has(c)}
                onChange={(e) => toggleCap(c, e.currentTarget.checked)}
              />
              {c}
            </label>
          ))}
        </fieldset>
        <label>
          Days{" "}
          <input
            type="number"
            min={1}
            value={grant.days}
            onInput={(e) => setGrant({ ...grant, days: Number(e.currentTarget.value) || 1 })}
          />
        </label>
        <button type="submit" class="primary" disabled={!grant.tenantId || grant.caps.size === 0}>
          Grant
        </button>
      </form>
      {issued && (
        <div class="issued" role="status">
          <p>
            Issued session <code>{issued.session.id}</code>. Its token (shown once; the principal's own logins
            gain the grant without it):
          </p>
          <input
            readOnly
            aria-label="Issued token"
            value={issued.jwt}
            onFocus={(e) => e.currentTarget.select()}
          />
        </div>
      )}
      <table class="listing">
        <thead>
          <tr>
            <th scope="col">Session</th>
            <th scope="col">Capabilities</th>
            <th scope="col">Scope</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {sessions?.map((s) => (
            <tr key={s.id}>
              <td>
                <code title={s.note}>{s.name || s.id}</code>
              </td>
              <td>{capsText(s.capabilities)}</td>
              <td>{scopeText(s.scope)}</td>
              <td>{formatTime(s.expiresAt)}</td>
              <td>{SessionStatus[s.status]?.replace("SESSION_STATUS_", "").toLowerCase() ?? ""}</td>
              <td>
                {s.status !== SessionStatus.REVOKED && (
                  <button
                    type="button"
                    class="small danger"
                    onClick={() =>
                      run(`Revoking session ${s.id}`, async () => {
                        await api.tokens.invalidate({ kind: { case: "id", value: s.id } });
                        await load();
                      })
                    }
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {sessions?.length === 0 && <p>No sessions.</p>}
    </>
  );
}

function VHostsAdmin({ login }: { login: Login }) {
  const { api } = login;
  const [vhosts, setVHosts] = useState<VHost[]>();
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [host, setHost] = useState("");
  const [tenantId, setTenantId] = useState("");
  const [problem, run, dismiss] = useAction();
  const load = useCallback(
    () =>
      run("Listing virtual hosts", async () => {
        setVHosts(await collect(api.vhosts.list({})));
        const ts = await collect(api.tenants.list({}));
        setTenants(ts);
        setTenantId((id) => id || ts[0]?.id || "");
      }),
    [api, run],
  );
  useEffect(() => void load(), [load]);
  const label = (id: string) => tenants.find((t) => t.id === id)?.label ?? id;
  return (
    <>
      {problem && <ProblemView problem={problem} onDismiss={dismiss} />}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void run(`Mapping ${host}`, async () => {
            await api.vhosts.ensure({ vhost: { vhost: host.trim().toLowerCase(), tenantId } });
            setHost("");
            await load();
          });
        }}
      >
        <label for="vhost-name">Host</label>
        <input
          id="vhost-name"
          value={host}
          placeholder="files.example.com"
          onInput={(e) => setHost(e.currentTarget.value)}
        />
        <select aria-label="Tenant" value={tenantId} onChange={(e) => setTenantId(e.currentTarget.value)}>
          {tenants.map((t) => (
            <option key={t.id} value={t.id}>
              {t.label}
            </option>
          ))}
        </select>
        <button type="submit" class="primary" disabled={host.trim() === "" || !tenantId}>
          Map
        </button>
      </form>
      <table class="listing">
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Tenant</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {vhosts?.map((v) => (
            <tr key={v.vhost}>
              <td>
                <code>{v.vhost}</code>
              </td>
              <td>{label(v.tenantId)}</td>
              <td>
                <button
                  type="button"
                  class="small danger"
                  onClick={() =>
                    run(`Removing ${v.vhost}`, async () => {
                      await api.vhosts.ensure({ vhost: v, delete: true });
                      await load();
                    })
                  }
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
