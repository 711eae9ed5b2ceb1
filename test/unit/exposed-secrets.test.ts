import { utimesSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ParseCache } from '../../src/tenants/parse-cache.js';
import { exposedSecrets, isSecretKey, isSecretVariable, looksLikeSecretKey, maskCachedConfig, maskSecrets, MAY_EXPOSE, stripSecrets } from '../../src/tenants/secrets.js';
import { diffConfigs } from '../../src/services/config-comparison.js';
import { substitute } from '../../src/tenants/substitution.js';
import { YamlTenantSource } from '../../src/tenants/tenant-source.js';
import { tenantYaml, workspace } from '../helpers/setup.js';

/**
 * Secrets under names the services' rule does not know (security review: `stripe_secret_key`, `apiKey`,
 * `client-secret`, a URL's password were stored, cached and printed without a word). They are not
 * stripped (the services read them as they are), but said with file:line and masked in output.
 */
describe('values that look like secrets outside the services\' rule', () => {
  const ws = workspace({}, { registry: false });
  afterAll(() => ws.cleanup());

  it('secret-looking key names, in any case and separator; the rule\'s own names and look-alike counters are not', () => {
    for (const k of ['secret_key', 'stripe_secret_key', 'apiKey', 'api-key', 'secretKey', 'client-secret', 'passwd', 'db_pwd', 'credentials', 'signing_key', 'encryption_key', 'accessToken', 'api_keys', 'apiKeys', 'secrets', 'passwords', 'private_keys', 'Authorization']) {
      expect(looksLikeSecretKey(k), k).toBe(true);
    }
    for (const k of ['api_key', 'password', 'smtp_password', 'token', 'max_tokens', 'token_limit', 'secret_name', 'keys', 'monkey', 'passport', 'pwd', 'max_tokens', 'tokens']) {
      expect(looksLikeSecretKey(k), k).toBe(false);
    }
    // The services' rule is unchanged: these are not stripped.
    expect(isSecretKey('stripe_secret_key')).toBe(false);
    expect(stripSecrets({ stripe_secret_key: 'sk_live' }).config).toEqual({ stripe_secret_key: 'sk_live' });
  });

  it('numbers and list items under such names count; fetch\'s credentials modes and a URL whose query holds an @ do not; verify never shows them', () => {
    const config = { db: { passwd: 12345678 }, aws: { credentials: ['AKIAEXAMPLE', '${AWS_KEY}'] }, cors: { credentials: 'include' }, hook: 'https://hooks.example.com:8443?notify=ops@example.com', jwt: { privateKey: 'pk' } };
    expect(exposedSecrets(config)).toEqual([
      { path: ['db', 'passwd'], kind: 'looks-secret' },
      { path: ['aws', 'credentials', '0'], kind: 'looks-secret' },
      { path: ['jwt', 'privateKey'], kind: 'looks-secret' },
    ]);
    expect(maskSecrets(config)).toMatchObject({ db: { passwd: '****' }, aws: { credentials: ['****', '****'] }, cors: { credentials: 'include' }, jwt: { privateKey: '****' } });
    expect(MAY_EXPOSE.test('jwt:\n  privateKey: pk\n')).toBe(true);
    const diff = diffConfigs({ s: { stripe_secret_key: 'sk_old' } }, { s: { stripe_secret_key: 'sk_new' } }, {});
    expect(diff).toEqual([{ field: 's.stripe_secret_key', cached: '****', current: '****' }]);
    // The library caches the stored `${VAR}` form: no difference (verify --fix deleted such right entries).
    expect(diffConfigs({ s: { stripe_secret_key: '${STRIPE_SK}' } }, { s: { stripe_secret_key: 'sk_live' } }, { s: { stripe_secret_key: '${STRIPE_SK}' } })).toEqual([]);
    // The services' own secret names hide numbers and list items too.
    expect(maskSecrets({ smtp: { password: 12345678, token: ['t1'] } })).toEqual({ smtp: { password: '****', token: ['****'] } });
    // Spellings the pre-filter must let through to the walk (the services' own `  api_key:` need not).
    for (const text of ['x-api_key: sk', '"API Key": k', 'aws-access_key: AKIA', 'openai.api_key: k']) expect(MAY_EXPOSE.test(text), text).toBe(true);
    expect(MAY_EXPOSE.test('openai:\n  api_key: "${OPENAI_KEY}"\n  access_key: "${AK}"\n')).toBe(false);
  });

  it('found with their paths (a ${VAR} reference is fine), masked in output, and said as file:line warnings, from the parse cache too', () => {
    const config = { p: { apiKey: 'abc', ref: { secretKey: '${X_KEY}' }, hook: ['https://bot:pw1@h.example/in', 'https://h.example/in', 'https://u:${PW}@h'] } };
    expect(exposedSecrets(config)).toEqual([
      { path: ['p', 'apiKey'], kind: 'looks-secret' },
      { path: ['p', 'hook', '0'], kind: 'url-password' },
    ]);
    expect(maskSecrets(config)).toEqual({ p: { apiKey: '****', ref: { secretKey: '****' }, hook: ['https://bot:****@h.example/in', 'https://h.example/in', 'https://u:****@h'] } });
    const file = ws.writeTenant('keys', tenantYaml('keys', 'Keys', 'payments:\n  stripe_secret_key: sk_live_123\n  webhook: "https://bot:hook-pw@hooks.example/in"\n'));
    const past = new Date(Date.now() - 60_000);
    utimesSync(file, past, past);
    const env = { XDG_CACHE_HOME: path.join(ws.dir, 'xdg') };
    const fresh = () => {
      const source = new YamlTenantSource(ws.tenantsDir);
      source.useParseCache(ParseCache.open(ws.tenantsDir, env));
      return source;
    };
    const first = fresh();
    const parsed = first.load('keys')!.warnings;
    first.saveParseCache();
    // A second process reads the entry from the parse cache: the same warnings.
    for (const warnings of [parsed, fresh().load('keys')!.warnings]) {
      expect(warnings).toEqual([
        expect.stringMatching(/keys\.yaml:5: payments\.stripe_secret_key looks like a secret but is none by the services' rule/),
        expect.stringMatching(/keys\.yaml:6: payments\.webhook: a URL with a password is stored and cached as written/),
      ]);
      // None of the warnings holds the value.
      expect(warnings.join('\n')).not.toMatch(/sk_live_123|hook-pw/);
    }
    // Nor do the YAML 1.1 and number warnings of such a value (they quoted it: a probe).
    ws.writeTenant('lookalike', tenantYaml('lookalike', 'L', 'x:\n  passwd: 1e3\n  client-secret: on\n  stripe_secret_key: 0644\n  apiKey: 98765432109876543210\n'));
    const said = new YamlTenantSource(ws.tenantsDir).load('lookalike')!.warnings.join('\n');
    expect(said).toMatch(/x\.client-secret: the services' YAML 1\.1 reader reads this value otherwise \(not shown: it looks like a secret\)/);
    expect(said).toMatch(/x\.apiKey: a number the registry or the services' YAML reader stores otherwise than written \(not shown/);
    expect(said).not.toMatch(/1e3|1000|\bon\b|0644|644|420|98765432109876/);
  });
});

/**
 * A credential substituted from a variable named like a secret under a key that says nothing of
 * secrets (`webhook: ${SLACK_BOT_TOKEN}`). Before: masking went by key names only, and get-config and
 * verify printed the token.
 */
describe('values filled from secret-named variables', () => {
  const env = { SLACK_BOT_TOKEN: 'xoxb-123-secret', ACME_API_KEY: 'ak-999', DB_PASSWD: 'pw-777', REGION: 'eu-west-1' };

  it('are masked in output whatever their key, in maps and lists; other variables and literals are shown', () => {
    const stored = {
      slack: { webhook: '${SLACK_BOT_TOKEN}', auth: 'Bearer ${ACME_API_KEY}', region: '${REGION}', fallback: '${UNSET_TOKEN:-}' },
      hooks: ['${DB_PASSWD}', 'plain', 'in ${REGION}'],
      note: 'xoxb-123-secret is named here as a literal',
    };
    const { value } = substitute(stored, env);
    expect(value.slack.webhook).toBe('xoxb-123-secret');
    expect(maskSecrets(value)).toEqual({
      slack: { webhook: '****', auth: '****', region: 'eu-west-1', fallback: '' },
      hooks: ['****', 'plain', 'in eu-west-1'],
      note: 'xoxb-123-secret is named here as a literal',
    });
    // A config nobody substituted has nothing to go by but its keys.
    expect(maskSecrets({ slack: { webhook: 'xoxb-123-secret' } })).toEqual({ slack: { webhook: 'xoxb-123-secret' } });
  });

  it('the names credentials go by: SUPABASE_SERVICE_ROLE_KEY, a tenant\'s OPENAI key, a DSN, a PAT; not a key\'s id or a plain setting', () => {
    const names = { SUPABASE_SERVICE_ROLE_KEY: 'srk', ACME_OPENAI_KEY: 'oai', SENTRY_DSN: 'https://k@sentry/1', GITHUB_PAT: 'ghp', HMAC_KEY: 'h', AWS_ACCESS_KEY_ID: 'AKIA1', REGION: 'eu' };
    const stored = Object.fromEntries(Object.keys(names).map((n) => [n.toLowerCase().replace(/_/g, ''), `\${${n}}`]));
    const shown = maskSecrets(substitute(stored, names).value) as Record<string, string>;
    expect(shown).toEqual({ supabaseservicerolekey: '****', acmeopenaikey: '****', sentrydsn: '****', githubpat: '****', hmackey: '****', awsaccesskeyid: 'AKIA1', region: 'eu' });
  });

  it('verify shows a whole map or list holding one masked (a difference of the map showed the value)', () => {
    const stored = { notify: { webhook: '${SLACK_BOT_TOKEN}', region: '${REGION}' }, hooks: ['${SLACK_BOT_TOKEN}', 'plain'] };
    const current = substitute(stored, env).value;
    expect(diffConfigs({}, current, stored)).toEqual([
      { field: 'notify', current: { webhook: '****', region: 'eu-west-1' } },
      { field: 'hooks', current: ['****', 'plain'] },
    ]);
    expect(diffConfigs({ hooks: ['xoxb-old'] }, current, stored)).toContainEqual({ field: 'hooks', cached: ['****'], current: ['****', 'plain'] });
  });

  it('verify masks the cached side whatever its shape now: a block since removed, a map where a reference stands, a map in a list', () => {
    expect(diffConfigs({ notify: { webhook: 'xoxb-123-secret' } }, {}, {}, 50, ['xoxb-123-secret'])).toEqual([{ field: 'notify', cached: { webhook: '****' } }]);
    const stored = { notify: ['${SLACK_BOT_TOKEN}'], t: ['${SLACK_BOT_TOKEN}', 'b'] };
    const current = substitute(stored, env).value;
    expect(diffConfigs({ notify: { webhook: 'xoxb-1' }, t: [{ webhook: 'xoxb-1' }, 'b'] }, current, stored)).toEqual([
      { field: 'notify', cached: { webhook: '****' }, current: ['****'] },
      { field: 't[0]', cached: '****', current: '****' },
    ]);
  });

  it('a cache hit (resolved by the services) is masked where the tenant file references a secret variable, whatever its shape or type now (before: printed)', () => {
    // The services' entry: resolved with their environment, which this process need not have.
    const cached = {
      slack: { webhook: 'xoxb-services-only', region: 'eu-west-1' }, hooks: ['xoxb-services-only', 'plain'], pin: 98765432,
      listmap: { x: 'lm-secret-6' }, mapstr: 'ms-secret-7', moved: 'Bearer xoxb-moved-99', _meta: { source: 'cache' },
    };
    const yamlForm = {
      slack: { webhook: '${SLACK_BOT_TOKEN}', region: '${REGION}' }, hooks: ['${SLACK_BOT_TOKEN}', 'plain'], pin: '${SMS_PIN_SECRET}',
      listmap: ['${LM_TOKEN}'], mapstr: { inner: '${MS_TOKEN}' }, bot: '${MOVED_TOKEN}',
    };
    // Before: only key names counted, and every value was shown.
    expect(maskSecrets(cached)).toEqual(cached);
    // This environment gives one referenced variable (found wherever the entry holds it), and unreferenced
    // secret-named ones with ordinary values (masking those hid ordinary strings: a review).
    const env = { MOVED_TOKEN: 'xoxb-moved-99', POSTGRES_PASSWORD: 'plain', PWD: '/srv/app', REGION: 'eu-west-1' };
    expect(maskCachedConfig(cached, yamlForm, env)).toEqual({
      slack: { webhook: '****', region: 'eu-west-1' }, hooks: ['****', 'plain'], pin: '****',
      listmap: { x: '****' }, mapstr: '****', moved: '****', _meta: { source: 'cache' },
    });
    // No file to go by: key names and URLs only; the entry itself is unchanged.
    expect(maskCachedConfig(cached, undefined, env)).toEqual(cached);
    expect(cached.slack.webhook).toBe('xoxb-services-only');
  });

  it('names that are no credential are shown (a cache key, a public key, a sort key, a flag), and credential words with a qualifier are not', () => {
    const shown = ['CACHE_KEY', 'CACHE_KEY_PREFIX', 'PUBLIC_KEY', 'STRIPE_PUBLISHABLE_KEY', 'RECAPTCHA_SITE_KEY', 'SORT_KEY', 'PARTITION_KEY', 'IDEMPOTENCY_KEY', 'TLS_CERT_PEM', 'SMTP_AUTH', 'REQUIRE_AUTH', 'AWS_ACCESS_KEY_ID', 'TOKEN_TTL',
      // The shell's directories, and settings named after a credential (a review: they masked paths and regions).
      'PWD', 'OLDPWD', 'INIT_PWD', 'PASSWORD_STORE_DIR', 'CREDENTIALS_DIRECTORY', 'SECRET_MANAGER_REGION', 'TOKEN_ISSUER', 'JWT_SECRET_ALGORITHM', 'KEY_ROTATION_DAYS'];
    const masked = ['OPENAI_API_KEY_PROD', 'SLACK_TOKEN_V2', 'WEBHOOK_SECRET_2', 'API_KEYS', 'JWT_SECRETS', 'AUTH_TOKEN_OLD', 'SECRET_KEY_BASE', 'BASIC_AUTH', 'DB_PASS', 'DB_PWD', 'PGPASSWORD', 'GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'SENTRY_DSN'];
    for (const n of shown) expect([n, isSecretVariable(n)]).toEqual([n, false]);
    for (const n of masked) expect([n, isSecretVariable(n)]).toEqual([n, true]);
  });

  it('verify shows a stale field filled from one as ****, cached and current', () => {
    const stored = { slack: { webhook: '${SLACK_BOT_TOKEN}', region: '${REGION}' } };
    const current = substitute(stored, env).value;
    const cached = { slack: { webhook: 'xoxb-old-secret', region: 'us-east-1' } };
    expect(diffConfigs(cached, current, stored)).toEqual([
      { field: 'slack.webhook', cached: '****', current: '****' },
      { field: 'slack.region', cached: 'us-east-1', current: 'eu-west-1' },
    ]);
  });
});
