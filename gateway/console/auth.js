// Sign-in at the clinic's identity provider: OpenID Connect authorization
// code flow with PKCE (S256), as a public client. The access token lives in
// this tab's sessionStorage only and is sent to the gateway as a bearer.

const PENDING = "console.signin";
const TOKEN = "console.token";

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function randomText(size) {
  return b64url(crypto.getRandomValues(new Uint8Array(size)));
}

async function discover(issuer) {
  const answer = await fetch(`${issuer}/.well-known/openid-configuration`, { credentials: "omit" });
  if (!answer.ok) throw new Error("the identity provider's settings could not be read");
  return answer.json();
}

export function redirectUri() {
  return `${location.origin}/console/`;
}

export async function startSignIn(oidc, returnTo) {
  const provider = await discover(oidc.issuer);
  const verifier = randomText(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomText(16);
  const nonce = randomText(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo,
                                                   tokenEndpoint: provider.token_endpoint }));
  const query = new URLSearchParams({
    response_type: "code", client_id: oidc.client_id, redirect_uri: redirectUri(), scope: oidc.scopes,
    state, nonce, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${provider.authorization_endpoint}?${query}`);
}

// Back from the provider with ?code=&state=: swap the code for a token.
// Answers the hash to return to, or null when this is no sign-in return.
export async function finishSignIn(oidc) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", `${location.pathname}${(pending && pending.returnTo) || "#/board"}`);
  if (params.has("error")) throw new Error(`sign-in was refused: ${params.get("error")}`);
  if (!pending || params.get("state") !== pending.state) throw new Error("sign-in did not start here; try again");
  const answer = await fetch(pending.tokenEndpoint, {
    method: "POST", credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"),
                                redirect_uri: redirectUri(), client_id: oidc.client_id,
                                code_verifier: pending.verifier }),
  });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok || !body.access_token) throw new Error(`sign-in failed: ${body.error || answer.status}`);
  keepToken(body.access_token, body.expires_in, claimsOf(body.id_token || body.access_token));
  return pending.returnTo || "#/board";
}

export function keepToken(accessToken, expiresIn, claims = {}) {
  const expiresAt = expiresIn ? Date.now() + Number(expiresIn) * 1000 : null;
  sessionStorage.setItem(TOKEN, JSON.stringify({
    accessToken, expiresAt, user: claims.name || claims.preferred_username || claims.sub || "signed in" }));
}

export function currentSignIn() {
  const kept = JSON.parse(sessionStorage.getItem(TOKEN) || "null");
  if (!kept || (kept.expiresAt && kept.expiresAt < Date.now() + 5000)) return null;
  return kept;
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
}

// Only to show who is signed in: the gateway checks the signature.
function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch (error) {
    return {};
  }
}
