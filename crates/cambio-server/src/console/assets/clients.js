// Clients: list and create (confidential or public), and one client's settings: the standard
// token exchange switch, refresh tokens in standard exchange, access token lifespan, redirect
// URIs, its secret, its default and optional client scopes, its audience mappers and its
// service account's realm and client roles.

import { enc, realmApi } from './api.js';
import { action, field, form, h, input, notify, section, select, table } from './ui.js';
import { clientRoles, realmRoles } from './users.js';

export const ATTR_EXCHANGE = 'standard.token.exchange.enabled';
export const ATTR_EXCHANGE_REFRESH = 'standard.token.exchange.enableRefreshRequestedTokenType';
export const ATTR_LIFESPAN = 'access.token.lifespan';

function kind(c) {
  if (c.bearerOnly) return 'bearer-only';
  return c.publicClient ? 'public' : 'confidential';
}

export async function render(view, ctx) {
  if (ctx.rest[0]) return renderOne(view, ctx, ctx.rest[0]);
  const { realm, access, go } = ctx;
  const api = realmApi(realm);
  const clients = await api.get('/clients');
  const rows = clients.map((c) => [
    h('a', { href: `#/${enc(realm)}/clients/${enc(c.id)}` }, c.clientId),
    kind(c),
    c.attributes?.[ATTR_EXCHANGE] === 'true' ? 'on' : 'off',
    c.enabled === false ? 'disabled' : 'enabled',
  ]);
  view.append(table('Clients', ['Client ID', 'Type', 'Standard token exchange', 'State'], rows));
  if (access.manageClients) {
    view.append(section('Create client', form('Create client', [
      field('Client ID', input({ name: 'clientId', required: true, autocomplete: 'off' })),
      field('Client type', select('type', [['confidential', 'Confidential (has a secret)'], ['public', 'Public (no secret)']], 'confidential')),
      field('Service account', h('input', { type: 'checkbox', name: 'serviceAccountsEnabled' })),
    ], 'Create client', async (data) => {
      const created = await api.post('/clients', {
        clientId: data.get('clientId'),
        publicClient: data.get('type') === 'public',
        serviceAccountsEnabled: data.has('serviceAccountsEnabled'),
        enabled: true,
      });
      notify(`Client ${data.get('clientId')} created`);
      go('clients', created.id);
    })));
  }
}

async function renderOne(view, { realm, access }, id) {
  const api = realmApi(realm);
  const path = `/clients/${enc(id)}`;
  const c = await api.get(path);
  const manage = access.manageClients;
  const attrs = c.attributes || {};
  const confidential = kind(c) === 'confidential';
  view.append(h('p', {}, h('a', { href: `#/${enc(realm)}/clients` }, '← All clients')),
    h('h2', {}, `${c.clientId} (${kind(c)})`));

  const fields = [
    field('Enabled', h('input', { type: 'checkbox', name: 'enabled', checked: c.enabled !== false, disabled: !manage })),
    field('Standard token exchange', h('input', {
      type: 'checkbox', name: 'exchange', checked: attrs[ATTR_EXCHANGE] === 'true', disabled: !manage || !confidential,
    }), confidential ? 'The client may exchange tokens whose audience names it (RFC 8693, Keycloak V2).' : 'Only confidential clients use standard token exchange.'),
    field('Allow refresh token in standard token exchange',
      select('exchangeRefresh', [['NO', 'No'], ['SAME_SESSION', 'Same session']], attrs[ATTR_EXCHANGE_REFRESH] || 'NO')),
    field('Access token lifespan (seconds, empty: the realm\'s)', input({ name: 'lifespan', type: 'number', min: 0, value: attrs[ATTR_LIFESPAN] ?? '' })),
    field('Service account', h('input', { type: 'checkbox', name: 'serviceAccountsEnabled', checked: !!c.serviceAccountsEnabled })),
    field('Redirect URIs (one per line)', h('textarea', { name: 'redirectUris', rows: 3 }, (c.redirectUris || []).join('\n'))),
  ];
  const settings = form('Client settings', fields, 'Save client', async (data) => {
    const attributes = { ...attrs };
    attributes[ATTR_EXCHANGE] = data.has('exchange') ? 'true' : 'false';
    attributes[ATTR_EXCHANGE_REFRESH] = data.get('exchangeRefresh');
    const lifespan = String(data.get('lifespan') || '').trim();
    if (lifespan) attributes[ATTR_LIFESPAN] = lifespan; else delete attributes[ATTR_LIFESPAN];
    await api.put(path, {
      clientId: c.clientId,
      enabled: data.has('enabled'),
      serviceAccountsEnabled: data.has('serviceAccountsEnabled'),
      redirectUris: String(data.get('redirectUris') || '').split('\n').map((s) => s.trim()).filter(Boolean),
      attributes,
    });
    notify(`Client ${c.clientId} saved`);
  });
  if (!manage) {
    settings.querySelectorAll('input, select, textarea, button').forEach((el) => { el.disabled = true; });
    settings.querySelector('.actions')?.remove();
  }
  view.append(section('Settings', settings));

  if (confidential && manage) {
    const shown = h('output', { class: 'secret', 'aria-label': 'Client secret' });
    const box = section('Credentials', h('div', { class: 'actions' },
      h('button', {
        type: 'button',
        onclick: action(null, async () => {
          shown.textContent = (await api.get(`${path}/client-secret`)).value;
        }),
      }, 'Show secret'),
      h('button', {
        type: 'button',
        onclick: action(null, async () => {
          shown.textContent = (await api.post(`${path}/client-secret`)).value;
          notify('A new secret was generated; the old one no longer works');
        }),
      }, 'Regenerate secret')), shown);
    view.append(box);
  }
  await renderScopes(view, api, path, manage);
  await renderAudienceMappers(view, api, path, manage, c);
  if (c.serviceAccountsEnabled && access.viewUsers) {
    await renderServiceAccount(view, api, path, access.manageUsers);
  }
}

/** The roles of the client's service account: what its client-credentials tokens carry. */
async function renderServiceAccount(view, api, path, manage) {
  const account = await api.get(`${path}/service-account-user`);
  const userPath = `/users/${enc(account.id)}`;
  view.append(h('h2', {}, 'Service account roles'),
    h('p', {}, `Roles of ${account.username}, the user its client-credentials tokens name.`),
    await realmRoles(api, userPath, manage, {
      title: 'Service account realm roles',
      assigned: 'Service account realm roles',
      role: 'Service account realm role',
      assign: 'Assign service account role',
    }),
    await clientRoles(api, userPath, manage, {
      title: 'Service account client roles',
      assigned: 'Service account client roles',
      client: 'Client of the role',
      role: 'Service account client role',
      assign: 'Assign service account client role',
    }));
}

const AUDIENCE_MAPPER = 'oidc-audience-mapper';

/** Audience mappers: which clients this client's tokens name in `aud`. */
async function renderAudienceMappers(view, api, path, manage, initial) {
  const box = section('Audience mappers');
  const others = (await api.get('/clients')).filter((o) => o.id !== initial.id);
  const fill = async (client) => {
    const mappers = client.protocolMappers || [];
    const audiences = mappers.filter((m) => m.protocolMapper === AUDIENCE_MAPPER);
    const save = async (next) => {
      await api.put(path, { clientId: client.clientId, protocolMappers: next });
      await fill(await api.get(path));
    };
    box.replaceChildren(h('h2', {}, 'Audience mappers'),
      h('p', {}, `Tokens issued to ${client.clientId} name these clients in aud, so they may exchange them (standard token exchange).`),
      table('Audience mappers', ['Mapper', 'Audience', ''], audiences.map((m) => [m.name, m.config?.['included.client.audience'] || '',
        manage ? h('button', {
          type: 'button',
          'aria-label': `Remove mapper ${m.name}`,
          onclick: action(box, async () => {
            await save(mappers.filter((x) => x !== m));
            notify(`Mapper ${m.name} removed`);
          }),
        }, 'Remove') : ''])));
    if (manage) {
      box.append(form('Add audience mapper', [
        field('Audience client', select('audience', others.map((o) => [o.clientId, o.clientId]))),
      ], 'Add audience', async (data) => {
        const audience = String(data.get('audience'));
        await save([...mappers, {
          name: `${audience} audience`,
          protocol: 'openid-connect',
          protocolMapper: AUDIENCE_MAPPER,
          config: { 'included.client.audience': audience, 'access.token.claim': 'true' },
        }]);
        notify(`${audience} added to the audience of ${client.clientId}'s tokens`);
      }));
    }
  };
  await fill(initial);
  view.append(box);
}

async function renderScopes(view, api, path, manage) {
  const [all, defaults, optional] = await Promise.all([
    api.get('/client-scopes'), api.get(`${path}/default-client-scopes`), api.get(`${path}/optional-client-scopes`),
  ]);
  const box = section('Client scopes');
  const list = (title, items, kindPath) => table(title, ['Scope', ''], items.map((s) => [s.name,
    manage ? h('button', {
      type: 'button',
      'aria-label': `Remove ${s.name} from ${title.toLowerCase()}`,
      onclick: action(box, async () => {
        await api.del(`${path}/${kindPath}/${enc(s.id)}`);
        notify(`${s.name} removed`);
        box.replaceWith(await renderScopesBox(api, path, manage));
      }),
    }, 'Remove') : '']));
  box.append(list('Default scopes', defaults, 'default-client-scopes'),
    list('Optional scopes', optional, 'optional-client-scopes'));
  if (manage) {
    const taken = new Set([...defaults, ...optional].map((s) => s.id));
    const free = all.filter((s) => !taken.has(s.id));
    if (free.length) {
      box.append(form('Add client scope', [
        field('Scope', select('scope', free.map((s) => [s.id, s.name]))),
        field('As', select('kind', [['default-client-scopes', 'Default'], ['optional-client-scopes', 'Optional']])),
      ], 'Add scope', async (data) => {
        await api.put(`${path}/${data.get('kind')}/${enc(data.get('scope'))}`);
        notify('Scope added');
        box.replaceWith(await renderScopesBox(api, path, manage));
      }));
    }
  }
  view.append(box);
  return box;
}

async function renderScopesBox(api, path, manage) {
  const holder = h('div', {});
  return renderScopes(holder, api, path, manage);
}
