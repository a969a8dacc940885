// A real OpenID provider for Prism's tests, built on the certified
// `oidc-provider` package. prism-harness (tests/harness/src/oidc.rs) starts it
// on a free port; it is not meant for anything else.
//
//   node provider.mjs serve --port P --keys FILE [--alg RS256|ES256] [--path /P] [--config JSON] [--log FILE]
//   node provider.mjs rotate --keys FILE [--alg RS256|ES256] [--keep-old]
//
// serve: issuer http://127.0.0.1:P (or http://127.0.0.1:P/PATH); signing keys from FILE (a private JWKS),
// generated and written there (mode 0600) when FILE does not exist; output
// appended to --log FILE when given.
// rotate: puts a new key first in FILE and drops the old ones (or keeps them
// after it with --keep-old); a restarted `serve` then signs with the new key.
//
// Access tokens are JWTs for the resource `urn:prism` (audience `prism`), carrying
// `sub`, `scope`, `groups` and, for users, `email`. Clients, accounts and TTLs
// come from --config (JSON, shaped like DEFAULTS below, which serve a run by
// hand); prism-harness always passes its own (tests/harness/src/oidc.rs).
//
// Test-only endpoint, so the device flow needs no browser:
//   POST /test/device  (form: user_code, account, decision=approve|deny)
// marks a pending device authorization as approved by `account` (or denied),
// exactly as the provider's own confirmation page would.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const DEFAULTS = {
  // Seconds.
  ttl: { access_token: 600, refresh_token: 86400, device_code: 600 },
  clients: [
    {
      client_id: 'prism-service',
      client_secret: 'prism-service-secret',
      groups: ['orders-writers'],
      scope: 'orders.read orders.write',
    },
    {
      client_id: 'tenant-b-service',
      client_secret: 'tenant-b-service-secret',
      groups: ['billing-writers'],
      scope: 'billing.read billing.write',
    },
    { client_id: 'prism-cli', public: true },
  ],
  accounts: [{ id: 'dev@local.prism', email: 'dev@local.prism', groups: ['prism-admins'] }],
};

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
// A resource indicator is an absolute URI; the tokens' audience is `prism`.
const RESOURCE = 'urn:prism';
const AUDIENCE = 'prism';
const OIDC_SCOPES = ['openid', 'offline_access', 'email', 'profile'];

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const flags = {};
  for (let i = 0; i < rest.length; i += 1) {
    const name = rest[i].replace(/^--/, '');
    if (rest[i + 1] === undefined || rest[i + 1].startsWith('--')) {
      flags[name] = true;
    } else {
      flags[name] = rest[i + 1];
      i += 1;
    }
  }
  return { command, flags };
}

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(64);
}

function newKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}` };
}

// Temp file + rename, created 0600: private keys are never readable by others.
function writeKeys(file, keys) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ keys }, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function readKeys(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8')).keys;
}

function rotate({ keys: file, alg = 'RS256', 'keep-old': keepOld }) {
  if (!file) fail('rotate needs --keys FILE');
  const old = fs.existsSync(file) ? readKeys(file) : [];
  writeKeys(file, [newKey(alg), ...(keepOld ? old : [])]);
}

// `oidc-provider` from PRISM_OIDC_MODULES (the node_modules folder
// scripts/tools.sh installs), else from next to this script.
async function loadProvider() {
  const modules = process.env.PRISM_OIDC_MODULES;
  if (modules) {
    const url = pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js'));
    return (await import(url.href)).default;
  }
  try {
    return (await import('oidc-provider')).default;
  } catch (err) {
    return fail(`cannot load oidc-provider (${err.code ?? err.message}): source scripts/tools.sh, which installs it and exports PRISM_OIDC_MODULES, or run npm ci in tests/oidc`);
  }
}

function clientMetadata(client) {
  if (client.public) {
    return {
      client_id: client.client_id,
      token_endpoint_auth_method: 'none',
      grant_types: [DEVICE_GRANT, 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    };
  }
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    // In the form body: the simplest for a test client, and Dex accepts it too.
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    ...(client.scope ? { scope: client.scope } : {}),
  };
}

async function serve(flags) {
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('serve needs --port P (1-65535)');
  if (!flags.keys) fail('serve needs --keys FILE');
  const alg = flags.alg ?? 'RS256';
  if (!['RS256', 'ES256'].includes(alg)) fail(`--alg ${alg}: only RS256 and ES256`);
  const config = { ...DEFAULTS, ...(flags.config ? JSON.parse(flags.config) : {}) };
  const ttl = { ...DEFAULTS.ttl, ...config.ttl };
  if (!fs.existsSync(flags.keys)) writeKeys(flags.keys, [newKey(alg)]);
  const keys = readKeys(flags.keys);
  // Tokens are signed with the first key: the newest after a rotation.
  const signAlg = keys[0].alg ?? alg;

  const clients = new Map(config.clients.map((c) => [c.client_id, c]));
  const accounts = new Map(config.accounts.map((a) => [a.id, a]));
  const resourceScopes = new Set();
  for (const c of [...config.clients, ...config.accounts]) {
    for (const s of (c.scope ?? '').split(' ').filter(Boolean)) resourceScopes.add(s);
  }

  const prefix = typeof flags.path === 'string' ? flags.path.replace(/\/+$/, '') : '';
  if (prefix && !prefix.startsWith('/')) fail('--path must start with /');
  const Provider = await loadProvider();
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map(clientMetadata),
    jwks: { keys },
    scopes: [...OIDC_SCOPES, ...resourceScopes],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['groups'] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    enabledJWA: { idTokenSigningAlgValues: [signAlg] },
    clientDefaults: { id_token_signed_response_alg: signAlg },
    ttl: {
      AccessToken: ttl.access_token,
      ClientCredentials: ttl.access_token,
      IdToken: ttl.access_token,
      RefreshToken: ttl.refresh_token,
      DeviceCode: ttl.device_code,
      Grant: ttl.refresh_token,
    },
    features: {
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return {
            scope: [...resourceScopes].join(' '),
            audience: AUDIENCE,
            accessTokenTTL: ttl.access_token,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signAlg } },
          };
        },
      },
    },
    findAccount: (_ctx, id) => {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id, email: account.email, email_verified: true, groups: account.groups ?? [],
        }),
      };
    },
    // The claims Prism's policy names: groups for everyone, email for users.
    extraTokenClaims: (_ctx, token) => {
      if (token.accountId) {
        const account = accounts.get(token.accountId);
        return { groups: account?.groups ?? [], ...(account?.email ? { email: account.email } : {}) };
      }
      return { groups: clients.get(token.clientId)?.groups ?? [] };
    },
  });

  const handler = provider.callback();
  const server = http.createServer((req, res) => {
    // Clients may send the absolute form of the request target.
    const url = new URL(req.url, issuer);
    const { pathname } = url;
    if (req.method === 'POST' && (pathname === '/test/device' || pathname === `${prefix}/test/device`)) {
      deviceDecision(provider, accounts, req, res);
      return;
    }
    if (prefix) {
      // Mounted under the issuer's path, the way oidc-provider expects it.
      if (pathname !== prefix && !pathname.startsWith(`${prefix}/`)) {
        res.writeHead(404).end();
        return;
      }
      req.originalUrl = pathname + url.search;
      req.url = pathname.slice(prefix.length) + url.search || '/';
    } else {
      req.url = pathname + url.search;
    }
    handler(req, res);
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`issuer ${issuer} kid ${keys[0].kid} alg ${signAlg}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function deviceDecision(provider, accounts, req, res) {
  try {
    const form = await readForm(req);
    const userCode = (form.get('user_code') ?? '').toUpperCase().replace(/\W/g, '');
    const decision = form.get('decision') ?? 'approve';
    const code = await provider.DeviceCode.findByUserCode(userCode, { ignoreExpiration: true });
    if (!code) return reply(res, 404, { error: 'unknown user_code' });
    if (code.isExpired) return reply(res, 400, { error: 'expired user_code' });
    if (code.accountId || code.error) return reply(res, 409, { error: 'user_code already used' });
    if (decision === 'deny') {
      Object.assign(code, { error: 'access_denied', errorDescription: 'End-User denied the request' });
      await code.save();
      return reply(res, 200, { denied: true });
    }
    const accountId = form.get('account') ?? '';
    const account = accounts.get(accountId);
    if (!account) return reply(res, 404, { error: `unknown account ${accountId}` });

    const requested = (code.params.scope ?? '').split(' ').filter(Boolean);
    const resourceScope = [...new Set([
      ...requested.filter((s) => !OIDC_SCOPES.includes(s)),
      ...(account.scope ?? '').split(' ').filter(Boolean),
    ])];
    const grant = new provider.Grant({ accountId, clientId: code.clientId });
    grant.addOIDCScope(requested.filter((s) => OIDC_SCOPES.includes(s)).join(' '));
    grant.addOIDCClaims(['sub', 'email', 'groups']);
    if (resourceScope.length) grant.addResourceScope(RESOURCE, resourceScope.join(' '));
    Object.assign(code, {
      accountId,
      authTime: Math.floor(Date.now() / 1000),
      grantId: await grant.save(),
      scope: [...requested, ...resourceScope.filter((s) => !requested.includes(s))].join(' '),
      resource: RESOURCE,
    });
    await code.save();
    return reply(res, 200, { approved: accountId });
  } catch (err) {
    return reply(res, 500, { error: String(err?.message ?? err) });
  }
}

const { command, flags } = parseArgs(process.argv.slice(2));
if (typeof flags.log === 'string') {
  const fd = fs.openSync(flags.log, 'a');
  const toLog = (chunk, encoding, callback) => {
    fs.writeSync(fd, typeof chunk === 'string' ? chunk : Buffer.from(chunk));
    if (typeof encoding === 'function') encoding();
    else if (typeof callback === 'function') callback();
    return true;
  };
  process.stdout.write = toLog;
  process.stderr.write = toLog;
}
if (command === 'serve') {
  await serve(flags);
} else if (command === 'rotate') {
  rotate(flags);
} else {
  fail('usage: provider.mjs serve --port P --keys FILE [--alg RS256|ES256] [--config JSON] | rotate --keys FILE [--alg A] [--keep-old]');
}
