// The one way the UI talks to the server: CloudStack's API at /client/api, with the login session
// (the sessionkey parameter and cookie must agree, as for CloudStack's own UI). Nothing else.

const SESSION = "hvcloud.session";

export class ApiError extends Error {
  constructor(code, text, status) {
    super(text || `error ${code}`);
    this.code = code;
    this.status = status;
  }
}

/** The last calls' outcomes ({command, ok, errorcode}): what tests read to prove the UI makes no call
 * the API refuses the user, and a first place to look when something fails. */
export const journal = [];
window.hvApiJournal = journal;

function note(command, ok, errorcode) {
  journal.push({command, ok, errorcode: errorcode || null});
  if (journal.length > 500) journal.shift();
}

let session = null;
try { session = JSON.parse(sessionStorage.getItem(SESSION) || "null"); } catch { session = null; }

/** The logged-in user as the login API answered (username, account, type, domainid, …), or null. */
export function user() { return session; }
/** Root admins (account type 1) see the operator pages; CloudStack's check is the API's, not ours. */
export function isAdmin() { return !!session && String(session.type) === "1"; }

function expired() {
  session = null;
  sessionStorage.removeItem(SESSION);
  window.dispatchEvent(new CustomEvent("hv:session-expired"));
}

function encode(params) {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    form.append(key, String(value));
  }
  return form;
}

async function post(params) {
  let resp;
  try {
    resp = await fetch("/client/api", {method: "POST", body: encode({...params, response: "json"}),
                                       credentials: "same-origin", headers: {"Accept": "application/json"}});
  } catch (err) {
    throw new ApiError(0, "The management server does not answer: " + err.message, 0);
  }
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  const inner = body && typeof body === "object" ? Object.values(body)[0] : null;
  if (!resp.ok || (inner && inner.errorcode)) {
    const code = (inner && inner.errorcode) || resp.status;
    const text = (inner && inner.errortext) || `HTTP ${resp.status}`;
    note(params.command, false, code);
    throw new ApiError(code, text, resp.status);
  }
  note(params.command, true);
  return inner || {};
}

export async function login(username, password, domain) {
  const params = {command: "login", username, password};
  if (domain && domain !== "/") params.domain = domain;
  const answer = await post(params);
  session = answer;
  sessionStorage.setItem(SESSION, JSON.stringify(answer));
  return answer;
}

export async function logout() {
  if (session) {
    try { await post({command: "logout", sessionkey: session.sessionkey}); } catch { /* gone already */ }
  }
  session = null;
  sessionStorage.removeItem(SESSION);
}

/** One API command; resolves to its response object ({count, virtualmachine: [...]}, {jobid}, …). */
export async function call(command, params = {}) {
  if (!session) { expired(); throw new ApiError(401, "Please log in", 401); }
  try {
    return await post({...params, command, sessionkey: session.sessionkey});
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      expired();
      throw new ApiError(401, "Your session has ended; please log in again", 401);
    }
    throw err;
  }
}

/** A list command's rows and total: key is the response's list name (virtualmachine, volume …). */
export async function list(command, key, params = {}) {
  const answer = await call(command, params);
  const items = answer[key] || [];
  return {items, count: answer.count ?? items.length};
}

/** Every row of a list command, page after page (for pickers: zones, offerings, templates …). */
export async function all(command, key, params = {}) {
  const out = [];
  for (let page = 1; page < 100; page++) {
    const {items, count} = await list(command, key, {...params, page, pagesize: 500});
    out.push(...items);
    if (items.length < 500 || out.length >= count) break;
  }
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait for an async job; resolves to its jobresult, rejects with the job's error. */
export async function job(jobid, onProgress) {
  for (let i = 0; ; i++) {
    const answer = await call("queryAsyncJobResult", {jobid});
    if (onProgress) onProgress(answer);
    if (answer.jobstatus === 1) return answer.jobresult || {};
    if (answer.jobstatus === 2) {
      const result = answer.jobresult || {};
      throw new ApiError(result.errorcode || 530, result.errortext || "The job failed", 200);
    }
    await sleep(i < 10 ? 500 : 1500);
  }
}

/** An async command: call it, then wait for its job. */
export async function callAsync(command, params = {}, onProgress) {
  const answer = await call(command, params);
  return answer.jobid ? job(answer.jobid, onProgress) : answer;
}
