// The upstream for the interop suite: panva's oidc-provider (a certified OpenID Provider) set up
// the way an Auth0 tenant looks to Herald:
// - namespaced custom claims whose names contain dots (`https://example.com/groups`,
//   `https://example.com/tenant`) in the ID token, as an Auth0 Action adds them;
// - `https://example.com/employee_number` only in the userinfo response;
// - opaque access tokens, unless the authorization request names an `audience` (Auth0's
//   parameter, translated to a resource indicator), which yields a JWT access token carrying
//   `https://example.com/roles`;
// - first-party logins: no consent screen at the upstream, only its login form;
// - `rotate()` swaps the signing key between logins: the new key signs, the old one stays
//   published, and the process keeps running (the in-memory store is shared across instances).
//
// Usable on its own, by hand or by the login benchmark: `node upstream.mjs <herald issuer>`.
import http from "node:http";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import Provider, { errors } from "oidc-provider";

export const API_AUDIENCE = "https://api.example.com";
export const UPSTREAM_CLIENT_ID = "herald";
export const UPSTREAM_CLIENT_SECRET = "upstream-secret-for-herald-0123456789";

/// The user every login name maps to, with the claims an Auth0 tenant would hold for it.
function account(sub) {
  return {
    accountId: sub,
    async claims(use) {
      const claims = {
        sub,
        name: `User ${sub}`,
        email: `${sub}@example.com`,
        email_verified: true,
        "https://example.com/groups": ["staff", "herald-admins"],
        "https://example.com/tenant": "acme.eu",
      };
      // Only the userinfo endpoint knows the employee number.
      if (use === "userinfo") claims["https://example.com/employee_number"] = 4711;
      return claims;
    },
  };
}

function rsaKey() {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256",
           kid: `upstream-${randomUUID()}` };
}

function configuration(redirectUris, keys) {
  return {
    clients: [{
      client_id: UPSTREAM_CLIENT_ID,
      client_secret: UPSTREAM_CLIENT_SECRET,
      redirect_uris: redirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }],
    jwks: { keys },
    // The first key signs; the others are published for verification only.
    cookies: { keys: ["interop-cookie-key-not-secret"] },
    pkce: { required: () => true },
    scopes: ["openid", "profile", "email"],
    claims: {
      openid: ["sub", "https://example.com/groups", "https://example.com/tenant",
               "https://example.com/employee_number"],
      profile: ["name"],
      email: ["email", "email_verified"],
    },
    // Scope claims go into the ID token too (Auth0 behaves so); the employee number is kept
    // out of it by account().claims("id_token").
    conformIdTokenClaims: false,
    extraParams: ["audience"],
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Auth0's `audience` becomes the resource indicator.
        async defaultResource(ctx, _client, oneOf) {
          if (oneOf) return oneOf;
          return ctx.oidc.params.audience ?? undefined;
        },
        async useGrantedResource() { return true; },
        async getResourceServerInfo(_ctx, resource) {
          if (resource !== API_AUDIENCE) {
            throw new errors.InvalidTarget(`unknown audience ${resource}`);
          }
          return { scope: "read:things", audience: resource, accessTokenFormat: "jwt",
                   jwt: { sign: { alg: "RS256" } } };
        },
      },
    },
    async extraTokenClaims(_ctx, token) {
      if (token.kind === "AccessToken" && token.resourceServer) {
        return { "https://example.com/roles": ["reader"] };
      }
      return undefined;
    },
    // A first-party app: whatever it asks for is granted without an upstream consent screen.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grant = new oidc.provider.Grant({
        clientId: oidc.client.clientId,
        accountId: oidc.session.accountId,
      });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(" "));
      for (const resource of Object.keys(oidc.resourceServers ?? {})) {
        grant.addResourceScope(resource, "read:things");
      }
      await grant.save();
      return grant;
    },
    async findAccount(_ctx, sub) {
      return account(sub);
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600,
           Session: 3600, Grant: 3600 },
  };
}

/// Starts the upstream on `port` (0: a free one). `heraldCallbacks` are its allowed redirect URIs.
export async function startUpstream({ port = 0, heraldCallbacks }) {
  let handler = null;
  const server = http.createServer((req, res) => handler(req, res));
  const sockets = new Set();
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const bound = server.address().port;
  const issuer = `http://127.0.0.1:${bound}`;
  let keys = [rsaKey()];

  const build = () => {
    const provider = new Provider(issuer, configuration(heraldCallbacks, keys));
    provider.on("server_error", (_ctx, err) => console.error("upstream server_error:", err));
    handler = provider.callback();
  };
  build();

  return {
    issuer,
    /// The kid of the key that signs now.
    signingKid: () => keys[0].kid,
    /// A new signing key; the previous one stays published.
    rotate() {
      keys = [rsaKey(), keys[0]];
      build();
    },
    /// Down: connections are refused until `resume()`.
    async stop() {
      await new Promise((resolve) => {
        server.close(resolve);
        for (const s of sockets) s.destroy();
      });
    },
    async resume() {
      await new Promise((resolve) => server.listen(bound, "127.0.0.1", resolve));
    },
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const herald = process.argv[2] ?? "http://127.0.0.1:8080";
  // UPSTREAM_PORT: a fixed port (scripts/bench-login-path.sh); a free one by default.
  const port = Number(process.env.UPSTREAM_PORT ?? 0);
  const up = await startUpstream({ port, heraldCallbacks: [`${herald}/callback/op`] });
  console.log(`oidc-provider upstream at ${up.issuer} (client ${UPSTREAM_CLIENT_ID})`);
}
