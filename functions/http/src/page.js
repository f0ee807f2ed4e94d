"use strict";
// The asynchronous path: POST images, then GET images/{id} until the
// request is done (the picture) or failed (its reason). Paths are relative
// to this page, so they hold on any stage, custom domain or local port.
const $ = (id) => document.getElementById(id);
// What the API asks of callers: "none", "jwt" or "iam" (see probe below).
let auth = "none";
const base = new URL(location.origin + location.pathname.replace(/\/?$/, "/"));
const POLL_MS = 1000;
const GIVE_UP_MS = 15 * 60 * 1000;

function show(state, detail) {
  $("state").dataset.state = state;
  $("state").textContent = state;
  $("detail").textContent = detail ? "(" + detail + ")" : "";
}

async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const token = $("token").value.trim();
  if (auth === "jwt" && token) headers["authorization"] = "Bearer " + token;
  const r = await fetch(new URL(path, base), {
    method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try { json = await r.json(); } catch (_) { json = null; }
  return { status: r.status, json, retryAfter: Number(r.headers.get("retry-after")) || 0 };
}

// What went wrong, in words: the API's own message, or what the status means.
function reasonOf(r) {
  if (r.status === 401) {
    const sent = auth === "jwt" && $("token").value.trim() !== "";
    needs("jwt");
    return sent
      ? "the API refused the token (expired, or from another issuer or audience?)"
      : "this API needs a token: paste one in the token field";
  }
  if (r.status === 403 && auth === "iam") return "this API takes only signed requests";
  const said = r.json && (r.json.error || r.json.message);
  return said ? said + " (HTTP " + r.status + ")" : "HTTP " + r.status;
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function follow(id) {
  const started = Date.now();
  let wait = POLL_MS;
  while (Date.now() - started < GIVE_UP_MS) {
    await sleep(wait);
    const r = await call("GET", "images/" + encodeURIComponent(id));
    if (r.status === 429 || r.status >= 500) {
      // Busy or briefly unavailable: ask again, later.
      wait = Math.min(Math.max(wait * 2, r.retryAfter * 1000), 30000);
      continue;
    }
    wait = POLL_MS;
    if (r.status !== 200) return show("failed", reasonOf(r));
    const s = r.json.status;
    if (s === "done") {
      $("picture").src = r.json.url;
      $("link").href = r.json.url;
      $("result").hidden = false;
      return show("done", r.json.model ? "made by " + r.json.model : "");
    }
    if (s === "failed") return show("failed", r.json.reason);
    show(s, s === "queued" ? "waiting for the worker" : s === "generating" ? "the model is drawing it" : "");
  }
  show("failed", "no picture after 15 minutes; ask for request " + id + " later");
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("go").disabled = true;
  $("result").hidden = true;
  $("request").hidden = true;
  show("sending");
  try {
    const r = await call("POST", "images", { prompt: $("prompt").value });
    if (r.status !== 202) return show("failed", reasonOf(r));
    $("id").textContent = r.json.id;
    $("request").hidden = false;
    show(r.json.status, "waiting for the worker");
    await follow(r.json.id);
  } catch (e) {
    show("failed", "the API could not be reached: " + e.message);
  } finally {
    $("go").disabled = false;
  }
});

function needs(kind) {
  auth = kind;
  $("token-field").hidden = kind !== "jwt";
  $("iam").hidden = kind !== "iam";
  $("go").disabled = kind === "iam";
}

// Which credential the API takes, asked of the API itself: a POST with no
// body and no credential is refused 400 by the function when API Gateway
// lets anyone through (nothing is queued), 401 by a JWT authorizer, 403 by
// IAM authorization.
async function probe() {
  try {
    const r = await call("POST", "images");
    document.body.dataset.probe = r.status;
    if (r.status === 401) needs("jwt");
    else if (r.status === 403) needs("iam");
    else if (r.status === 400) needs("none");
  } catch (_) {
    // Unreachable now: the first real call says so.
  }
  document.body.dataset.auth = auth;
}
probe();
