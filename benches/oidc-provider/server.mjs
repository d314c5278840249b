// panva's oidc-provider set up like Herald's benchmark client: one confidential client allowed
// client_credentials, JWT access tokens (RFC 9068) for one resource, signed with BENCH_ALG
// (RS256 or ES256) using a key generated at start. Production mode, no dev interactions.
// With BENCH_FLOWS=1 it also has a client for the authorization-code flow and its built-in
// development login and consent pages, so whole logins can be driven like Herald's.
// Usage: BENCH_ALG=RS256 PORT=18090 [BENCH_FLOWS=1] node server.mjs
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const alg = process.env.BENCH_ALG || 'RS256';
const port = Number(process.env.PORT || 18090);
const issuer = `http://127.0.0.1:${port}`;
const resource = 'https://api.example.com';

const { privateKey } = alg === 'RS256'
  ? generateKeyPairSync('rsa', { modulusLength: 2048 })
  : generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `bench-${alg}` };

const flows = process.env.BENCH_FLOWS === '1';

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench-web',
    client_secret: 'bench-secret',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1:9/cb'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg,
  }, {
    client_id: 'bench',
    client_secret: 'bench-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    // Not used by client_credentials, but must name an algorithm the keys support.
    id_token_signed_response_alg: alg,
    scope: 'api:read',
  }],
  jwks: { keys: [jwk] },
  scopes: ['api:read'],
  features: {
    devInteractions: { enabled: flows },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api:read',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 900,
        jwt: { sign: { alg } },
      }),
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${alg} listening on ${issuer}`);
});
