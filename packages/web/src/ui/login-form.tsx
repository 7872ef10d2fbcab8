/** The login screen: paste a token (an OIDC sign-in button joins it once the server offers one). */
import { useState } from "preact/hooks";
import { describe, type Problem } from "../api/errors.js";
import { type Login, loginWithPastedToken } from "../auth/login-state.js";
import { ProblemView } from "./problem-view.js";

export function LoginForm({ onLogin }: { onLogin: (login: Login) => void }) {
  const [token, setToken] = useState("");
  const [remember, setRemember] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setProblem(undefined);
    try {
      onLogin(await loginWithPastedToken(token, remember));
    } catch (err) {
      setProblem(describe("Logging in", err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>cacheroach</h1>
      <form onSubmit={submit} aria-label="Log in with a token">
        <label for="token">Token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          autocomplete="off"
          spellcheck={false}
          placeholder="Paste a token (cacheroach bootstrap or cacheroach login prints one)"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <label class="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} />
          Remember on this device
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Checking…" : "Log in"}
        </button>
      </form>
      {problem && <ProblemView problem={problem} />}
      <p class="hint">
        The token stays in this browser tab (or on this device if you ask) and is sent only to this server.
      </p>
    </main>
  );
}
