// Calls to this server's JSON API with the browser session, and its problem details in words.
// Same-origin requests carry the session cookie and `Sec-Fetch-Site: same-origin`, which is
// what the server's cross-site guard lets through (docs/web.md), so no token is needed.

export class ApiError extends Error {
  constructor(message, status, problem = {}) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

const FALLBACK = {
  401: "Your session has ended; sign in again in another tab, then retry.",
  403: "You are not allowed to do this.",
  404: "It is no longer there (it may have been deleted).",
  413: "That is too large for this server.",
};

// A sentence for an answer that is not a success: the problem's `detail`, with the fields a
// validation error names, never raw JSON.
export async function problemText(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back on the status alone.
  }
  let text = typeof problem.detail === "string" && problem.detail ? problem.detail : null;
  if (Array.isArray(problem.errors)) {
    const fields = problem.errors
      .map((error) => [error.key, error.message].filter(Boolean).join(": "))
      .filter(Boolean);
    if (fields.length) text = `${text ? `${text} ` : ""}${fields.join("; ")}.`;
  }
  if (!text) {
    text = FALLBACK[response.status] ?? `The server could not do this (status ${response.status}).`;
  }
  return new ApiError(text, response.status, problem);
}

// JSON in, JSON out; a failure throws an ApiError whose message is the problem in words.
export async function api(method, path, body, options) {
  return (await apiAnswer(method, path, body, options)).body;
}

// As `api`, for a caller that tells successes apart: `{ status, body }`.
export async function apiAnswer(method, path, body, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? { Accept: "application/json" } : { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The connection to the server was lost; check your network and try again.", 0);
  }
  if (!response.ok) throw await problemText(response);
  return { status: response.status, body: response.status === 204 ? null : await response.json() };
}
