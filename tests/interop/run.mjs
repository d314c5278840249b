// Herald between certified OpenID peers. Starts panva's oidc-provider as the upstream (upstream.mjs)
// and Herald in front of it, on free 127.0.0.1 ports with a generated config, then logs in as
// client apps would: panva's openid-client as a confidential, a public and a machine client, the Rust
// `openidconnect` crate (tests/interop_rust.rs, run by cargo), and headless Chromium through the
// upstream's login form and Herald's consent page. Prints `N passed, N failed`; exit 1 on failure.
//
// Usage: node run.mjs <herald binary> [artifacts dir]
// Scenarios are plain async functions in `scenarios`, each using the same `login()` walk and
// openid-client config; the token lifecycle (refresh rotation and reuse, client_credentials,
// revocation, introspection) is exercised with openid-client's own grant functions.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import * as oidc from "openid-client";
import { chromium } from "playwright-core";
import { startUpstream, API_AUDIENCE, UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET } from "./upstream.mjs";

const heraldBin = process.argv[2];
const artifacts = process.argv[3] ?? "artifacts/interop";
if (!heraldBin) { console.error("usage: node run.mjs <herald binary> [artifacts dir]"); process.exit(2); }
mkdirSync(artifacts, { recursive: true });
const started = Date.now();
const CONFIDENTIAL_SECRET = "interop-confidential-secret";
const MACHINE_SECRET = "interop-machine-secret";
const STEP_TIMEOUT = 15_000;
const children = new Set();
process.on("exit", () => { for (const c of children) c.kill("SIGKILL"); });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
// The whole run is bounded, whatever hangs.
setTimeout(() => { console.error("interop: the run took longer than 150 s; giving up"); process.exit(1); }, 150_000).unref();

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const withTimeout = (p, ms, what) => Promise.race([
  p, sleep(ms).then(() => { throw new Error(`${what}: no answer within ${ms} ms`); }),
]);
const jwtPayload = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
const jwtHeader = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString());

// ---------------------------------------------------------------------------------------------
// Ports, the upstream, Herald.
const heraldPort = await freePort();
const callbackPort = await freePort();
const gonePort = await freePort(); // nothing ever listens here: the upstream that is down
const herald = `http://127.0.0.1:${heraldPort}`;
const redirectUri = `http://127.0.0.1:${callbackPort}/cb`;
const upstreamIds = ["op", "op-api", "op-badaud", "op-badsecret", "gone"];
const upstream = await startUpstream({ heraldCallbacks: upstreamIds.map((id) => `${herald}/callback/${id}`) });
let firstUpstreamUse = null; // Herald caches discovery from here; its forced refetch has a 10 s cooldown

// The client apps' redirect URI: a page that says the login came back (the browser lands here).
const callbackServer = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>back at the app</title><h1>Back at the app</h1>");
});
await new Promise((r) => callbackServer.listen(callbackPort, "127.0.0.1", r));
callbackServer.unref();

const dotted = (name) => `'https://example\\.com/${name}'`; // one TOML literal: one claim name
const attributes = (rows) => rows.map(([claim, source, type]) => `
[[upstreams.attributes]]
claim = ${dotted(claim)}
source = "${source}"
type = "${type}"
`).join("");
const mappings = (rows) => rows.map(([from, to]) => `
[[upstreams.mappings]]
from = ${dotted(from)}
to = "${to}"
`).join("");
const standardMappings = mappings([["groups", "groups"], ["tenant", "tenant"],
  ["employee_number", "employee_number"], ["roles", "api_roles"]]);
function oidcUpstream(id, { userinfo, employeeSource, audience, secret = UPSTREAM_CLIENT_SECRET, issuer = upstream.issuer }) {
  return `
[[upstreams]]
id = "${id}"
kind = "oidc"
issuer = "${issuer}"
client_id = "${UPSTREAM_CLIENT_ID}"
client_secret = "${secret}"
scopes = ["openid", "profile", "email"]
userinfo = ${userinfo}
${audience ? `extra_authorize_params = { audience = "${audience}" }` : ""}
${attributes([["groups", "id_token", "string_array"], ["tenant", "id_token", "string"],
  ["employee_number", employeeSource, "integer"], ["roles", "access_token", "string_array"]])}
${standardMappings}`;
}
const work = mkdtempSync(path.join(tmpdir(), "herald-interop-"));
const config = `
issuer = "${herald}"
listen = "127.0.0.1:${heraldPort}"
# DPoP proofs carry Herald's nonce (RFC 9449 §8): openid-client retries with it.
require_dpop_nonce = true
database_url = "sqlite://${work}/herald.db"
${oidcUpstream("op", { userinfo: true, employeeSource: "userinfo" })}
${oidcUpstream("op-api", { userinfo: false, employeeSource: "id_token", audience: API_AUDIENCE })}
${oidcUpstream("op-badaud", { userinfo: false, employeeSource: "id_token", audience: "https://unknown.example.com" })}
${oidcUpstream("op-badsecret", { userinfo: false, employeeSource: "id_token", secret: "not-the-secret" })}
${oidcUpstream("gone", { userinfo: false, employeeSource: "id_token", issuer: `http://127.0.0.1:${gonePort}` })}

[[clients]]
client_id = "confidential"
client_name = "Interop confidential app"
client_secret = "${CONFIDENTIAL_SECRET}"
redirect_uris = ["${redirectUri}"]
scopes = ["openid", "profile", "email", "groups", "org", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]

[[clients]]
client_id = "public"
client_name = "Interop public app"
redirect_uris = ["${redirectUri}"]
scopes = ["openid", "profile", "email", "groups", "org", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]

# A machine client: client_credentials only, so no redirect URI and no user scopes.
[[clients]]
client_id = "machine"
client_name = "Interop machine client"
client_secret = "${MACHINE_SECRET}"
redirect_uris = []
scopes = ["reports"]
grant_types = ["client_credentials"]

[scopes.groups]
description = "Your groups"
claims = ["groups"]

[scopes.org]
description = "Your organisation details"
claims = ["tenant", "employee_number", "api_roles"]

[scopes.reports]
description = "Read reports"
`;
writeFileSync(`${work}/herald.toml`, config);
writeFileSync(`${artifacts}/herald.toml`, config);

const heraldLog = `${work}/herald.log`;
function startHerald() {
  const out = [];
  const child = spawn(heraldBin, ["serve", "--config", `${work}/herald.toml`], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.stdout.on("data", (d) => out.push(d));
  child.stderr.on("data", (d) => out.push(d));
  child.on("exit", () => { children.delete(child); writeFileSync(heraldLog, Buffer.concat(out)); });
  return { child, log: () => Buffer.concat(out).toString() };
}
const heraldProc = startHerald();
{
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    up = await fetch(`${herald}/healthz`).then((r) => r.ok, () => false);
    if (!up) await sleep(100);
  }
  if (!up) { console.error(`interop: Herald did not start; its log:\n${heraldProc.log()}`); process.exit(1); }
}

// ---------------------------------------------------------------------------------------------
// A login walked over plain HTTP, as a browser without JavaScript would: Herald's /authorize, the
// upstream's login form, back to Herald, its consent page, and finally the app's redirect URI.
// One cookie jar per browser; like browsers, cookies for 127.0.0.1 are shared across ports.
class Jar {
  cookies = new Map();
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "); }
  take(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const expired = attrs.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired) this.cookies.delete(name); else this.cookies.set(name, pair.slice(i + 1).trim());
    }
  }
}
const formField = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
const formAction = (html) => html.match(/<form[^>]*action="([^"]*)"/)?.[1]?.replaceAll("&amp;", "&");

/// Walks from `url` until the app's redirect URI (returns `{ callback: URL }`) or a page that is
/// not a form it knows (returns `{ status, html, url }`). `beforeHerald` runs once, just before
/// the upstream's answer is delivered to Herald's callback.
async function login(url, { user = "alice", jar = new Jar(), consent = "allow", beforeHerald } = {}) {
  let method = "GET", body;
  for (let hop = 0; hop < 20; hop++) {
    if (url.startsWith(redirectUri)) return { callback: new URL(url), jar };
    if (beforeHerald && url.startsWith(`${herald}/callback/`)) { await beforeHerald(); beforeHerald = null; }
    const headers = { cookie: jar.header() };
    if (body) headers["content-type"] = "application/x-www-form-urlencoded";
    const res = await withTimeout(fetch(url, { method, body, headers, redirect: "manual" }), STEP_TIMEOUT, `${method} ${url}`);
    jar.take(res);
    method = "GET"; body = undefined;
    if (res.status >= 300 && res.status < 400) { url = new URL(res.headers.get("location"), url).href; continue; }
    const html = await res.text();
    const action = formAction(html);
    if (res.status === 200 && url.startsWith(upstream.issuer) && /name="login"/.test(html)) {
      method = "POST"; url = new URL(action, url).href;
      body = new URLSearchParams({ prompt: "login", login: user, password: "any" }).toString();
    } else if (res.status === 200 && url.startsWith(herald) && action === "/consent" && consent) {
      method = "POST"; url = `${herald}/consent`;
      body = new URLSearchParams({ request: formField(html, "request"), csrf: formField(html, "csrf"), decision: consent }).toString();
    } else {
      return { status: res.status, html, url, jar };
    }
  }
  throw new Error("more than 20 hops");
}

// openid-client as a client app of Herald: `confidential` and `public` log users in, `machine`
// uses client_credentials.
async function clientConfig(kind) {
  const opts = { execute: [oidc.allowInsecureRequests], timeout: 10 };
  const secrets = { confidential: CONFIDENTIAL_SECRET, machine: MACHINE_SECRET };
  const secret = secrets[kind];
  return secret
    ? oidc.discovery(new URL(herald), kind, secret, oidc.ClientSecretBasic(secret), opts)
    : oidc.discovery(new URL(herald), kind, undefined, oidc.None(), opts);
}
const OFFLINE_SCOPE = "openid profile email groups org offline_access";
async function authRequest(config, extra = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState(), nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: "openid profile email groups org",
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    state, nonce, ...extra,
  });
  return { url: url.href, verifier, state, nonce };
}
/// A full login with openid-client through the upstream `idp`: tokens, verified ID-token claims,
/// userinfo. `extra` adds to or overrides the authorization request's parameters (`scope`).
async function clientLogin(kind, idp, walk = {}, extra = {}) {
  const config = await clientConfig(kind);
  const req = await authRequest(config, { idp_hint: idp, ...extra });
  firstUpstreamUse ??= Date.now();
  const done = await login(req.url, walk);
  assert.ok(done.callback, `the login did not come back to the app: ${done.status} at ${done.url}\n${done.html?.slice(0, 500)}`);
  const tokens = await oidc.authorizationCodeGrant(config, done.callback,
    { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
  const claims = tokens.claims();
  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
  return { config, tokens, claims, userinfo, jar: done.jar };
}

function assertMappedClaims(where, c, { employee }) {
  assert.deepEqual(c.groups, ["staff", "herald-admins"], `${where}: groups`);
  assert.equal(c.tenant, "acme.eu", `${where}: tenant`);
  assert.equal(typeof c.tenant, "string");
  if (employee) {
    assert.strictEqual(c.employee_number, 4711, `${where}: employee_number is the integer 4711`);
  } else {
    assert.ok(!("employee_number" in c), `${where}: employee_number must be absent without upstream userinfo`);
  }
  for (const k of Object.keys(c)) assert.ok(!k.startsWith("https://"), `${where}: unmapped upstream claim ${k} leaked`);
}

// ---------------------------------------------------------------------------------------------
let passed = 0, failed = 0;
async function check(name, fn) {
  const t = Date.now();
  try { await withTimeout(fn(), 45_000, name); passed++; console.log(`ok - ${name} (${Date.now() - t} ms)`); }
  catch (e) { failed++; console.log(`not ok - ${name}\n${e.stack}`); }
}

/// Asserts Herald answered with its error page: status, heading, and a way back to the app.
function assertErrorPage(done, status, heading, code) {
  assert.ok(!done.callback, "expected an error page, but the login came back to the app");
  assert.equal(done.status, status, done.html?.slice(0, 400));
  assert.ok(done.url.startsWith(herald), `the page is Herald's, not ${done.url}`);
  assert.match(done.html, new RegExp(`<h1>${heading}</h1>`));
  const back = done.html.match(/href="([^"]*)"/g)?.map((h) => h.slice(6, -1).replaceAll("&amp;", "&")).find((h) => h.startsWith(redirectUri));
  assert.ok(back, "the page links back to the app");
  assert.equal(new URL(back).searchParams.get("error"), code);
}

/// The error a call was rejected with; fails if it succeeded. openid-client puts the OAuth
/// error code in `error` and the HTTP status in `status`.
async function rejection(promise) {
  try { await promise; } catch (e) { return e; }
  assert.fail("expected the call to fail, but it succeeded");
}
const isActive = async (config, token) => (await oidc.tokenIntrospection(config, token)).active;
async function assertUserinfoRefused(config, accessToken, sub) {
  const e = await rejection(oidc.fetchUserInfo(config, accessToken, sub));
  assert.equal(e.status, 401, `userinfo with a revoked access token: ${e}`);
}

const scenarios = [
  ["openid-client, confidential: discovery, code + PKCE, ID token and userinfo carry the mapped dotted claims", async () => {
    const { claims, userinfo, tokens } = await clientLogin("confidential", "op");
    assert.equal(claims.iss, herald);
    assert.equal(jwtHeader(tokens.id_token).alg, "RS256");
    assert.equal(claims.email, "alice@example.com");
    assertMappedClaims("ID token", claims, { employee: true });
    assertMappedClaims("userinfo", userinfo, { employee: true });
    // The access token through `op` was opaque upstream, so its roles never reach the context.
    assert.ok(!("api_roles" in claims), "api_roles from an opaque upstream access token");
  }],
  ["openid-client, public (PKCE, no secret): the same login, and a second one skips consent", async () => {
    const first = await clientLogin("public", "op", { user: "bob" });
    assert.equal(first.claims.email, "bob@example.com");
    assertMappedClaims("ID token", first.claims, { employee: true });
    assertMappedClaims("userinfo", first.userinfo, { employee: true });
    const config = await clientConfig("public");
    const req = await authRequest(config, { idp_hint: "op" });
    // Same browser: Herald's session is reused, no upstream form, no consent page.
    const again = await login(req.url, { jar: first.jar, consent: null });
    assert.ok(again.callback, `second login: ${again.status} ${again.url}`);
    const tokens = await oidc.authorizationCodeGrant(config, again.callback,
      { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
    assert.equal(tokens.claims().sub, first.claims.sub);
  }],
  ["openid-client, confidential with offline_access: refresh rotates; reusing the old token revokes the family", async () => {
    const first = await clientLogin("confidential", "op", { user: "hana" }, { scope: OFFLINE_SCOPE });
    const { config, tokens } = first;
    assert.ok(tokens.refresh_token, "a refresh token for a client with the grant and offline_access");
    // openid-client checks an ID token's claims (iss, aud, exp, iat); with this, its signature
    // against Herald's JWKS too.
    oidc.enableNonRepudiationChecks(config);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.refresh_token, "rotation hands out a successor");
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token, "the successor is a new token");
    // OIDC Core §12.2: the same iss, sub, aud and auth_time, and no nonce.
    const again = refreshed.claims();
    assert.ok(again, "an ID token on refresh");
    assert.equal(again.iss, herald);
    assert.equal(again.sub, first.claims.sub);
    assert.deepEqual(again.aud, first.claims.aud);
    assert.equal(again.auth_time, first.claims.auth_time);
    assert.ok(!("nonce" in again), "no nonce on a refreshed ID token");
    assertMappedClaims("refreshed ID token", again, { employee: true });
    const info = await oidc.fetchUserInfo(config, refreshed.access_token, again.sub);
    assertMappedClaims("userinfo with the refreshed access token", info, { employee: true });
    // The retired token comes back: Herald takes it for a leak and revokes the whole family.
    assert.equal((await rejection(oidc.refreshTokenGrant(config, tokens.refresh_token))).error, "invalid_grant");
    assert.equal((await rejection(oidc.refreshTokenGrant(config, refreshed.refresh_token))).error, "invalid_grant",
      "the successor went with its family");
    assert.equal(await isActive(config, refreshed.access_token), false, "the family's access tokens went too");
  }],
  ["openid-client, confidential: introspection, and revocation of the access token, then of the refresh token", async () => {
    const { config, tokens, claims } = await clientLogin("confidential", "op", { user: "ivan" }, { scope: OFFLINE_SCOPE });
    const at = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(at.active, true, JSON.stringify(at));
    assert.equal(at.client_id, "confidential");
    assert.equal(at.sub, claims.sub);
    assert.equal(at.iss, herald);
    assert.deepEqual(at.scope.split(" ").sort(), OFFLINE_SCOPE.split(" ").sort());
    const rt = await oidc.tokenIntrospection(config, tokens.refresh_token);
    assert.equal(rt.active, true, JSON.stringify(rt));
    assert.equal(rt.client_id, "confidential");
    assert.equal(rt.sub, claims.sub);

    await oidc.tokenRevocation(config, tokens.access_token);
    assert.equal(await isActive(config, tokens.access_token), false, "inactive once revoked");
    await assertUserinfoRefused(config, tokens.access_token, claims.sub);
    // RFC 7009 §2.2: a token the server does not know is answered 200 all the same.
    await oidc.tokenRevocation(config, "not-a-token-herald-issued");

    // Revoking the access token leaves the refresh token; revoking that ends the grant.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    await oidc.tokenRevocation(config, refreshed.refresh_token);
    assert.equal(await isActive(config, refreshed.refresh_token), false);
    assert.equal(await isActive(config, refreshed.access_token), false, "the grant's access tokens go with it");
    await assertUserinfoRefused(config, refreshed.access_token, claims.sub);
    assert.equal((await rejection(oidc.refreshTokenGrant(config, refreshed.refresh_token))).error, "invalid_grant");
  }],
  ["openid-client, public (no secret): refresh, and /revoke with client_id only; no introspection", async () => {
    const { config, tokens, claims } = await clientLogin("public", "op", { user: "judy" }, { scope: OFFLINE_SCOPE });
    assert.ok(tokens.refresh_token, "a refresh token for the public client");
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    assert.equal(refreshed.claims().sub, claims.sub);
    await oidc.fetchUserInfo(config, refreshed.access_token, claims.sub);
    // Introspection is for confidential clients, and they see only their own tokens. Herald
    // answers 401 invalid_client without a Basic challenge (the client never used Basic), so
    // openid-client reports the OAuth error itself.
    const refused = await rejection(oidc.tokenIntrospection(config, refreshed.access_token));
    assert.equal(refused.status, 401, `${refused}`);
    assert.equal(refused.error, "invalid_client", `${refused}`);
    assert.equal(await isActive(await clientConfig("confidential"), refreshed.access_token), false,
      "another client's token introspects inactive");

    await oidc.tokenRevocation(config, refreshed.refresh_token);
    assert.equal((await rejection(oidc.refreshTokenGrant(config, refreshed.refresh_token))).error, "invalid_grant");
    await assertUserinfoRefused(config, refreshed.access_token, claims.sub);
  }],
  ["openid-client, machine client: client_credentials, introspection, revocation", async () => {
    const config = await clientConfig("machine");
    const tokens = await oidc.clientCredentialsGrant(config, { scope: "reports" });
    assert.equal(tokens.token_type, "bearer");
    assert.equal(tokens.scope, "reports");
    assert.ok(!tokens.id_token && !tokens.refresh_token, "no ID token and no refresh token (RFC 6749 §4.4.3)");
    const info = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(info.active, true, JSON.stringify(info));
    assert.equal(info.client_id, "machine");
    assert.equal(info.sub, "machine", "the client acts for itself");
    assert.equal(info.scope, "reports");
    assert.equal(await isActive(await clientConfig("confidential"), tokens.access_token), false,
      "another client's token introspects inactive");
    await oidc.tokenRevocation(config, tokens.access_token);
    assert.equal(await isActive(config, tokens.access_token), false, "inactive once revoked");
    // A client that did not register the grant may not use it.
    const e = await rejection(oidc.clientCredentialsGrant(await clientConfig("confidential")));
    assert.equal(e.error, "unauthorized_client");
  }],
  ["userinfo-only claim: absent with userinfo = false; a JWT access token (audience) yields its roles", async () => {
    const { claims, userinfo } = await clientLogin("confidential", "op-api", { user: "carol" });
    assertMappedClaims("ID token", claims, { employee: false });
    assertMappedClaims("userinfo", userinfo, { employee: false });
    assert.deepEqual(claims.api_roles, ["reader"], "roles from the upstream's JWT access token");
  }],
  ["openidconnect (Rust crate), confidential: code + PKCE, ID token, userinfo, refresh, introspection, reuse", async () => {
    const cargo = spawn("cargo", ["test", "--locked", "--quiet", "--test", "interop_rust", "--", "--ignored", "--nocapture"], {
      env: { ...process.env, HERALD_INTEROP_ISSUER: herald, HERALD_INTEROP_UPSTREAM: upstream.issuer,
             HERALD_INTEROP_CLIENT_ID: "confidential", HERALD_INTEROP_CLIENT_SECRET: CONFIDENTIAL_SECRET,
             HERALD_INTEROP_REDIRECT_URI: redirectUri },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(cargo);
    let out = "";
    cargo.stdout.on("data", (d) => { out += d; });
    cargo.stderr.on("data", (d) => { out += d; });
    const code = await new Promise((r) => cargo.on("exit", r));
    children.delete(cargo);
    assert.equal(code, 0, `cargo test --test interop_rust failed:\n${out}`);
    assert.match(out, /interop_rust: logged in as dave/, `the Rust test did not run its login:\n${out}`);
    assert.match(out, /interop_rust: refreshed, introspected, reuse revoked the family/, `the Rust test stopped early:\n${out}`);
  }],
  ["headless Chromium: the upstream's login form, Herald's consent page, back at the app", async () => {
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await (await browser.newContext()).newPage();
      page.setDefaultTimeout(STEP_TIMEOUT);
      // No fonts from the internet for the upstream's stock login page.
      await page.route(/^https?:\/\/(?!127\.0\.0\.1)/, (r) => r.abort());
      const config = await clientConfig("public");
      const req = await authRequest(config, { idp_hint: "op" });
      await page.goto(req.url);
      await page.waitForURL(new RegExp(`^${upstream.issuer}/interaction/`));
      await page.locator('input[name="login"]').fill("erin");
      await page.locator('input[name="password"]').fill("any");
      await page.screenshot({ path: `${artifacts}/upstream-login.png`, fullPage: true });
      await page.getByRole("button", { name: "Sign-in" }).click();
      await page.waitForURL(new RegExp(`^${herald}/consent`));
      assert.match(await page.textContent("h1"), /Interop public app wants to access your account/);
      await page.screenshot({ path: `${artifacts}/herald-consent.png`, fullPage: true });
      await page.getByRole("button", { name: "Allow" }).click();
      await page.waitForURL(new RegExp(`^${redirectUri}`));
      const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()),
        { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
      const claims = tokens.claims();
      assert.equal(claims.email, "erin@example.com");
      assertMappedClaims("ID token", claims, { employee: true });
    } finally {
      await browser.close();
    }
  }],
  ["an upstream that is down: Herald's page says so and links back with temporarily_unavailable", async () => {
    const config = await clientConfig("confidential");
    const done = await login((await authRequest(config, { idp_hint: "gone" })).url);
    assertErrorPage(done, 502, "The identity provider is unavailable", "temporarily_unavailable");
  }],
  ["an upstream that goes down after its login form: the token exchange fails with a clear page", async () => {
    const config = await clientConfig("confidential");
    const done = await login((await authRequest(config, { idp_hint: "op" })).url, {
      user: "frank", beforeHerald: () => upstream.stop(),
    });
    await upstream.resume();
    assertErrorPage(done, 502, "The identity provider is unavailable", "temporarily_unavailable");
  }],
  ["openid-client with a pushed authorization request (RFC 9126): the login and its tokens", async () => {
    const config = await clientConfig("confidential");
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState(), nonce = oidc.randomNonce();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: redirectUri, scope: "openid profile email groups org",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      state, nonce, idp_hint: "op",
    });
    assert.match(url.searchParams.get("request_uri"), /^urn:ietf:params:oauth:request_uri:/);
    assert.equal(url.searchParams.get("scope"), null, "only client_id and request_uri travel in the browser");
    const done = await login(url.href, { user: "alice" });
    assert.ok(done.callback, `the login did not come back to the app: ${done.status} at ${done.url}`);
    const tokens = await oidc.authorizationCodeGrant(config, done.callback,
      { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    assertMappedClaims("ID token of a pushed request", tokens.claims(), { employee: true });
  }],
  ["openid-client with DPoP (RFC 9449), public client: bound tokens, userinfo and refresh with proofs and nonces", async () => {
    const config = await clientConfig("public");
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));
    const req = await authRequest(config, { idp_hint: "op", scope: OFFLINE_SCOPE });
    const done = await login(req.url, { user: "alice" });
    assert.ok(done.callback, `the login did not come back to the app: ${done.status} at ${done.url}`);
    const tokens = await oidc.authorizationCodeGrant(config, done.callback,
      { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce }, undefined, { DPoP });
    assert.equal(tokens.token_type, "dpop", "openid-client reports a DPoP-bound token");
    const jkt = jwtPayload(tokens.access_token).cnf?.jkt;
    assert.match(jkt ?? "", /^[A-Za-z0-9_-]{43}$/, "the access token carries cnf.jkt");
    const claims = tokens.claims();
    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
    assertMappedClaims("userinfo with a DPoP-bound token", info, { employee: true });
    // Without the proof, as a bearer token: refused.
    const bare = await fetch(`${herald}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get("www-authenticate"), /^DPoP error="invalid_token"/);
    // The refresh token is bound to the key: with a proof by another key it is refused.
    const stranger = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair("ES256"));
    assert.equal((await rejection(oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: stranger }))).error,
      "invalid_grant");
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
    assert.equal(jwtPayload(refreshed.access_token).cnf?.jkt, jkt, "the refreshed token is bound to the same key");
  }],
  ["an upstream that answers with an error (unknown audience): Herald shows what it said", async () => {
    const config = await clientConfig("confidential");
    const done = await login((await authRequest(config, { idp_hint: "op-badaud" })).url);
    assertErrorPage(done, 502, "The identity provider reported an error", "server_error");
    assert.match(done.html, /unknown audience https:\/\/unknown\.example\.com/);
  }],
  ["an upstream that refuses Herald's client secret: the sign-in could not be verified", async () => {
    const config = await clientConfig("confidential");
    const done = await login((await authRequest(config, { idp_hint: "op-badsecret" })).url, { user: "gina" });
    assertErrorPage(done, 502, "Sign-in could not be verified", "server_error");
  }],
  ["a rotated upstream signing key is picked up without restarting Herald (ID and access tokens)", async () => {
    // Logins before the rotation, so Herald holds both upstreams' old keys.
    for (const idp of ["op", "op-api"]) await clientLogin("confidential", idp, { user: "alice" });
    const before = upstream.signingKid();
    upstream.rotate();
    assert.notEqual(upstream.signingKid(), before);
    // Herald refetches an upstream's keys at most every 10 s; wait out that cooldown if the
    // run got here sooner, so the test shows the rotation, not the rate limit.
    const wait = 10_500 - (Date.now() - firstUpstreamUse);
    if (wait > 0) await sleep(wait);
    const viaOp = await clientLogin("confidential", "op", { user: "alice" });
    assertMappedClaims("ID token after rotation", viaOp.claims, { employee: true });
    const viaApi = await clientLogin("confidential", "op-api", { user: "alice" });
    assertMappedClaims("ID token after rotation", viaApi.claims, { employee: false });
    assert.deepEqual(viaApi.claims.api_roles, ["reader"], "roles from a JWT access token signed with the new key");
    assert.equal(heraldProc.child.exitCode, null, "Herald kept running");
  }],
];

try {
  // INTEROP_ONLY=regex runs the matching scenarios alone (while working on one); never in CI,
  // and a filter that matches nothing is a failure, not a green run of nothing.
  const only = process.env.INTEROP_ONLY ? new RegExp(process.env.INTEROP_ONLY) : null;
  if (only && process.env.CI === "true") {
    throw new Error(`INTEROP_ONLY=${process.env.INTEROP_ONLY} is set with CI=true: CI runs every scenario`);
  }
  const chosen = scenarios.filter(([name]) => !only || only.test(name));
  if (chosen.length === 0) throw new Error(`INTEROP_ONLY=${process.env.INTEROP_ONLY} matches no scenario`);
  for (const [name, fn] of chosen) await check(name, fn);
} finally {
  upstream.close();
  heraldProc.child.kill("SIGTERM");
}
await sleep(200);
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`${passed} passed, ${failed} failed (${seconds} s; oidc-provider ${pkgVersion("oidc-provider")}, openid-client ${pkgVersion("openid-client")}, playwright-core ${pkgVersion("playwright-core")})`);
if (failed) {
  console.log(`Herald's log follows:\n${heraldProc.log()}`);
}
if (passed === 0) console.log("not ok - no scenario passed");
process.exit(failed || passed === 0 ? 1 : 0);

function pkgVersion(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}
