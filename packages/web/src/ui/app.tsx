/** The page: resumes or asks for a login, then shows files or (for super users) administration. */
import type { Tenant } from "@cacheroach/proto";
import { useCallback, useEffect, useState } from "preact/hooks";
import { describe, type Problem } from "../api/errors.js";
import { endCookieSession, forgetToken, type Login, resumeLogin } from "../auth/login-state.js";
import { AdminView } from "./admin-view.js";
import { FileBrowser } from "./file-browser.js";
import { LoginForm } from "./login-form.js";
import { ProblemView } from "./problem-view.js";
import { parseRoute, type Route, routeHash } from "./route.js";

/** True for a super session (tenants, principals, sessions and vhosts are theirs to manage). */
export function isSuper(login: Login): boolean {
  return login.session.scope?.kind.case === "superToken";
}

function useRoute(): [Route, (r: Route) => void] {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const go = useCallback((r: Route) => {
    const h = routeHash(r);
    if (location.hash !== h) location.hash = h;
    else setRoute(r);
  }, []);
  return [route, go];
}

export function App() {
  const [login, setLogin] = useState<Login | undefined | "resuming">("resuming");
  const [problem, setProblem] = useState<Problem>();
  useEffect(() => {
    resumeLogin().then(setLogin, (err) => {
      setProblem(describe("Resuming your session", err));
      setLogin(undefined);
    });
  }, []);
  if (login === "resuming") return <p class="loading">Loading…</p>;
  if (!login)
    return (
      <>
        {problem && <ProblemView problem={problem} />}
        <LoginForm onLogin={setLogin} />
      </>
    );
  return (
    <Shell
      login={login}
      onLogout={() => {
        forgetToken();
        if (login.source === "cookie") void endCookieSession();
        setLogin(undefined);
      }}
    />
  );
}

function Shell({ login, onLogout }: { login: Login; onLogout: () => void }) {
  const [route, go] = useRoute();
  const [tenants, setTenants] = useState<Tenant[]>();
  const [problem, setProblem] = useState<Problem>();
  const loadTenants = useCallback(async () => {
    try {
      const list: Tenant[] = [];
      for await (const t of login.api.tenants.list({})) list.push(t);
      list.sort((a, b) => a.label.localeCompare(b.label));
      setTenants(list);
    } catch (err) {
      setProblem(describe("Listing tenants", err));
      setTenants([]);
    }
  }, [login]);
  useEffect(() => {
    void loadTenants();
  }, [loadTenants]);
  // Pick the first tenant when none is chosen. This runs after the page is painted, so the user
  // may have picked one from the list since this render: read the address as it is now, or the
  // stale `route` would overrule their choice.
  useEffect(() => {
    if (route.kind !== "files" || route.tenantId || !tenants?.[0]) return;
    const now = parseRoute(location.hash);
    if (now.kind === "files" && !now.tenantId) go({ kind: "files", tenantId: tenants[0].id, dir: "/" });
  }, [route, tenants, go]);
  const [principal, setPrincipal] = useState<string>();
  useEffect(() => {
    // The principal's name, when this session may read it (else its ID is shown).
    login.api.principals.load({ kind: { case: "id", value: login.session.principalId } }).then(
      (p) => setPrincipal(p.label),
      () => undefined,
    );
  }, [login]);
  const who = principal || login.session.principalId;
  const tenantId = route.kind === "files" ? route.tenantId : undefined;
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">cacheroach</span>
        <nav aria-label="Sections">
          <a href={routeHash({ kind: "files", tenantId, dir: "/" })} aria-current={route.kind === "files"}>
            Files
          </a>
          {isSuper(login) && (
            <a href="#/admin/tenants" aria-current={route.kind === "admin"}>
              Admin
            </a>
          )}
        </nav>
        {route.kind === "files" && tenants && tenants.length > 0 && (
          <label class="tenant-pick">
            <span>Tenant</span>
            <select
              value={tenantId ?? ""}
              onChange={(e) => go({ kind: "files", tenantId: e.currentTarget.value, dir: "/" })}
            >
              {tenants.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.label}
                </option>
              ))}
            </select>
          </label>
        )}
        <span class="who" title={`principal ${login.session.principalId}, session ${login.session.id}`}>
          {isSuper(login) ? "super · " : ""}
          {who}
        </span>
        <button type="button" class="link" onClick={onLogout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {problem && <ProblemView problem={problem} onDismiss={() => setProblem(undefined)} />}
        {route.kind === "admin" ? (
          isSuper(login) ? (
            <AdminView login={login} section={route.section} onTenantsChanged={loadTenants} />
          ) : (
            <p>Administration needs a super session.</p>
          )
        ) : tenants === undefined ? (
          <p class="loading">Loading tenants…</p>
        ) : tenants.length === 0 ? (
          <p>This session reaches no tenant.</p>
        ) : route.tenantId ? (
          <FileBrowser
            key={route.tenantId}
            api={login.api}
            tenant={tenants.find((t) => t.id === route.tenantId)}
            tenantId={route.tenantId}
            dir={route.dir}
            onNavigate={(dir) => go({ kind: "files", tenantId: route.tenantId, dir })}
          />
        ) : null}
      </main>
    </div>
  );
}
