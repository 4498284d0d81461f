// The public API (/api/v1) with the signed-in user's bearer token. Errors
// come back as problem+json and are thrown as ApiError carrying it.

let token = null;
let onUnauthorized = () => {};

export function useToken(value, whenRefused) {
  token = value;
  if (whenRefused) onUnauthorized = whenRefused;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `the request failed (${status})`);
    this.status = status;
    this.problem = problem || { detail: this.message };
  }
}

// One key per thing the user means to create: a retried click sends the
// same key and the server answers the first result instead of a second one.
export function newKey() {
  return crypto.randomUUID();
}

export async function api(method, path, { body, key, query } = {}) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  credentials: "omit", cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, { title: "No connection", detail: "The clinic's server could not be reached. Try again." });
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (error) { parsed = null; }
  if (response.status === 401) onUnauthorized();
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}
