// The HTTP API: JSON in and out, with the session's token as a Bearer header
// (the httpOnly auth_token cookie goes along too, same origin).

const TOKEN_KEY = "miaubloom.token";
const REQUEST_TIMEOUT_MS = 10000;

/** A failed call: `code` is the protocol's error code, or "network" when nothing answered. */
export class ApiError extends Error {
  constructor(message, code, status, retryAfter = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export const session = {
  /** The token from the last login, kept for this tab only. */
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Call the API; the parsed body on success, ApiError otherwise. */
export async function api(method, path, body = undefined) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    throw new ApiError("No se pudo conectar con el servidor", "network", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok || !data || data.success !== true) {
    const retry = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(
      data?.message || `Error ${response.status}`,
      data?.code || (response.status >= 500 ? "unavailable" : "invalid"),
      response.status,
      retry,
    );
  }
  return data;
}

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) search.set(key, String(value));
  }
  return search.toString();
}
