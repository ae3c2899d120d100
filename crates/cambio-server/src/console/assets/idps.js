// Identity providers: whose tokens the realm accepts in an exchange (issuer, keys, audiences,
// algorithms), how their claims become a user (claim and role mappings, provisioning), which
// grant types select them and which clients may use them (its allow-list, and its legacy
// token-exchange permission).

import { enc, realmApi } from './api.js';
import { action, field, form, h, input, notify, section, select, table } from './ui.js';
import { exchangePermission } from './permissions.js';

// (config key, label, hint, kind)
const SETTINGS = [
  ['issuer', 'Issuer', 'The exact `iss` of the provider\'s tokens.'],
  ['jwksUrl', 'JWKS URL', 'HTTPS; fetched with bounded time and size, never from a token header.'],
  ['cambio.jwks', 'Inline JWKS (instead of a URL)', 'A JSON Web Key Set.', 'textarea'],
  ['clientId', 'Client ID at the provider', 'Its tokens for this realm name it in `aud`.'],
  ['cambio.allowedAudiences', 'Accepted audiences', 'Space-separated; the token\'s `aud` must hold one.'],
  ['cambio.allowedAlgorithms', 'Accepted algorithms', 'Space-separated JWS algorithms, e.g. ES256 RS256.'],
  ['cambio.subjectClaim', 'Subject claim', 'Default `sub`.'],
  ['cambio.usernameClaim', 'Username claim'],
  ['cambio.emailClaim', 'Email claim'],
  ['cambio.rolesClaim', 'Roles claim', 'A claim holding a list of external role names.'],
  ['cambio.roleMappings', 'Role mappings', 'external=local pairs, space-separated.'],
  ['cambio.maxLifetime', 'Longest token life (seconds)'],
  ['cambio.grantTypes', 'Grant types that select this provider', 'Space-separated URIs (alias grants).'],
  ['cambio.allowedClients', 'Clients that may exchange its tokens', 'Space-separated client IDs.'],
];

export async function render(view, ctx) {
  const { realm, access, go } = ctx;
  const api = realmApi(realm);
  if (ctx.rest[0]) return renderOne(view, ctx, ctx.rest[0]);
  const providers = await api.get('/identity-provider/instances');
  view.append(table('Identity providers', ['Alias', 'Issuer', 'Provisioning', 'State'], providers.map((p) => [
    h('a', { href: `#/${enc(realm)}/idps/${enc(p.alias)}` }, p.alias),
    p.config?.issuer || '', p.config?.['cambio.provisioning'] || 'linked-only',
    p.enabled === false ? 'disabled' : 'enabled',
  ])));
  if (access.manageRealm) {
    view.append(section('Register identity provider', form('Register identity provider', [
      field('Alias', input({ name: 'alias', required: true, autocomplete: 'off' })),
      ...settingFields({}),
    ], 'Register provider', async (data) => {
      const alias = String(data.get('alias'));
      await api.post('/identity-provider/instances', {
        alias, providerId: 'oidc', enabled: true, config: configFrom(data, {}),
      });
      notify(`Identity provider ${alias} registered`);
      go('idps', alias);
    })));
  }
}

function settingFields(config, disabled = false) {
  const fields = SETTINGS.map(([key, label, hint, kind]) => field(label, kind === 'textarea'
    ? h('textarea', { name: key, rows: 3, disabled }, config[key] || '')
    : input({ name: key, value: config[key] || '', disabled }), hint));
  fields.push(field('Provisioning', select('cambio.provisioning',
    [['linked-only', 'Linked users only'], ['create', 'Create users on first use']],
    config['cambio.provisioning'] || 'linked-only')));
  return fields;
}

function configFrom(data, current) {
  const config = { ...current };
  for (const [key] of SETTINGS) {
    const value = String(data.get(key) || '').trim();
    if (value) config[key] = value; else delete config[key];
  }
  config['cambio.provisioning'] = data.get('cambio.provisioning');
  config.useJwksUrl = config.jwksUrl ? 'true' : 'false';
  return config;
}

async function renderOne(view, { realm, access }, alias) {
  const api = realmApi(realm);
  const path = `/identity-provider/instances/${enc(alias)}`;
  const provider = await api.get(path);
  const manage = access.manageRealm;
  view.append(h('p', {}, h('a', { href: `#/${enc(realm)}/idps` }, '← All identity providers')),
    h('h2', {}, alias));
  const settings = form('Identity provider settings', [
    field('Enabled', h('input', { type: 'checkbox', name: 'enabled', checked: provider.enabled !== false })),
    ...settingFields(provider.config || {}),
  ], 'Save provider', async (data) => {
    await api.put(path, { alias, enabled: data.has('enabled'), config: configFrom(data, provider.config || {}) });
    notify(`Identity provider ${alias} saved`);
  });
  if (!manage) {
    settings.querySelectorAll('input, select, textarea, button').forEach((el) => { el.disabled = true; });
    settings.querySelector('.actions')?.remove();
  }
  view.append(section('Settings', settings));
  if (manage) {
    view.append(h('div', { class: 'actions' }, h('button', {
      type: 'button',
      onclick: action(view, async () => {
        await api.del(path);
        notify(`Identity provider ${alias} deleted`);
        location.hash = `#/${enc(realm)}/idps`;
      }),
    }, 'Delete provider')));
  }
  if (access.viewAuthorization) await renderPermissions(view, api, path, alias, access);
}

/**
 * The provider's legacy (V1) permissions: the management-permissions switch, then its
 * `token-exchange` permission, whose policies name the clients that may exchange its tokens
 * (besides those its settings allow).
 */
async function renderPermissions(view, api, path, alias, access) {
  const mpPath = `${path}/management/permissions`;
  const state = await api.get(mpPath);
  const manage = access.manageAuthorization;
  const switchBox = h('input', { type: 'checkbox', name: 'enabled', checked: !!state.enabled, disabled: !manage });
  const box = section(`Permissions of ${alias}`,
    field('Provider permissions enabled', switchBox, 'Creates the token-exchange permission of this provider.'),
    manage ? h('div', { class: 'actions' }, h('button', {
      type: 'button',
      onclick: action(view, async () => {
        await api.put(mpPath, { enabled: switchBox.checked });
        notify(`Permissions ${switchBox.checked ? 'enabled' : 'disabled'} for ${alias}`);
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      }),
    }, 'Apply permissions')) : '');
  view.append(box);
  const permissionId = state.scopePermissions?.['token-exchange'];
  if (!state.enabled || !permissionId) return;
  const clients = await api.get('/clients');
  view.append(await exchangePermission(api, {
    permissionId, clients, what: `tokens of ${alias}`, manage,
  }));
}
