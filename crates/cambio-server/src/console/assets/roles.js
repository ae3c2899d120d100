// Roles and client scopes: realm roles and each client's roles (create, delete), one role's
// composites (add and remove realm and client roles), and client scopes with their protocol
// mappers (list, add an audience mapper, delete).
//
// Routes: #/{realm}/roles, #/{realm}/roles/realm/{name}, #/{realm}/roles/client/{client}/{name},
// #/{realm}/roles/scope/{id}.

import { enc, realmApi } from './api.js';
import { action, field, form, h, input, notify, section, select, table } from './ui.js';

const AUDIENCE_MAPPER = 'oidc-audience-mapper';

function refresh() {
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export async function render(view, ctx) {
  const [kind, ...rest] = ctx.rest;
  if (kind === 'realm' && rest[0]) return renderRole(view, ctx, null, rest[0]);
  if (kind === 'client' && rest[1]) return renderRole(view, ctx, rest[0], rest[1]);
  if (kind === 'scope' && rest[0]) return renderScope(view, ctx, rest[0]);
  const { realm, access } = ctx;
  const api = realmApi(realm);
  const roles = await api.get('/roles');
  const rolesBox = section('Realm roles', table('Realm roles', ['Role', 'Description', 'Composite'],
    roles.map((r) => [h('a', { href: `#/${enc(realm)}/roles/realm/${enc(r.name)}` }, r.name),
      r.description || '', r.composite ? 'yes' : 'no'])));
  if (access.manageRealm) {
    rolesBox.append(form('Create realm role', [
      field('Role name', input({ name: 'name', required: true, autocomplete: 'off' })),
      field('Description', input({ name: 'description' })),
    ], 'Create role', async (data) => {
      const body = { name: data.get('name') };
      if (data.get('description')) body.description = data.get('description');
      await api.post('/roles', body);
      notify(`Role ${body.name} created`);
      refresh();
    }));
  }
  view.append(rolesBox);
  // Client roles and client scopes are client settings: view-clients reads them.
  if (!access.viewClients) return;
  view.append(await clientRolesBox(api, realm, access.manageClients));
  const scopes = await api.get('/client-scopes');
  const scopesBox = section('Client scopes', table('Client scopes', ['Scope', 'Protocol', 'In token scope', 'Mappers'],
    scopes.map((s) => [h('a', { href: `#/${enc(realm)}/roles/scope/${enc(s.id)}` }, s.name), s.protocol || 'openid-connect',
      s.attributes?.['include.in.token.scope'] === 'false' ? 'no' : 'yes', String((s.protocolMappers || []).length)])));
  if (access.manageClients) {
    scopesBox.append(form('Create client scope', [
      field('Scope name', input({ name: 'name', required: true, autocomplete: 'off' })),
    ], 'Create scope', async (data) => {
      await api.post('/client-scopes', { name: data.get('name'), protocol: 'openid-connect' });
      notify(`Client scope ${data.get('name')} created`);
      refresh();
    }));
  }
  view.append(scopesBox);
}

/** One client's roles at a time: list, create, delete. */
async function clientRolesBox(api, realm, manage) {
  const clients = await api.get('/clients');
  const box = section('Client roles');
  const holder = h('div', {});
  // Only the latest choice is shown: a list that arrives after another client was picked
  // (the first client's, loaded as the section opens, on a slow connection) is dropped, so
  // that the form never creates roles in a client other than the one on screen.
  let latest = 0;
  const show = async (clientUuid) => {
    const shown = ++latest;
    const client = clients.find((c) => c.id === clientUuid);
    const base = `/clients/${enc(clientUuid)}/roles`;
    const list = await api.get(base);
    if (shown !== latest) return;
    holder.replaceChildren(table(`Roles of ${client.clientId}`, ['Role', 'Description', 'Composite', ''], list.map((r) => [
      h('a', { href: `#/${enc(realm)}/roles/client/${enc(clientUuid)}/${enc(r.name)}` }, r.name),
      r.description || '', r.composite ? 'yes' : 'no',
      manage ? h('button', {
        type: 'button',
        'aria-label': `Delete client role ${r.name}`,
        onclick: action(holder, async () => {
          await api.del(`${base}/${enc(r.name)}`);
          notify(`Client role ${r.name} deleted`);
          await show(clientUuid);
        }),
      }, 'Delete') : '',
    ])));
    if (manage) {
      holder.append(form('Create client role', [
        field('Client role name', input({ name: 'name', required: true, autocomplete: 'off' })),
        field('Client role description', input({ name: 'description' })),
      ], 'Create client role', async (data) => {
        const body = { name: data.get('name') };
        if (data.get('description')) body.description = data.get('description');
        await api.post(base, body);
        notify(`Client role ${body.name} created in ${client.clientId}`);
        await show(clientUuid);
      }));
    }
  };
  const picker = select('client', clients.map((c) => [c.id, c.clientId]));
  picker.addEventListener('change', action(holder, () => show(picker.value)));
  box.append(field('Client of the roles', picker), holder);
  if (clients.length) await show(clients[0].id);
  return box;
}

/** One role: its composites, and (with the right) adding and removing them. */
async function renderRole(view, { realm, access }, clientUuid, name) {
  const api = realmApi(realm);
  const clients = await api.get('/clients').catch(() => []);
  const byId = new Map(clients.map((c) => [c.id, c]));
  const rolePath = clientUuid ? `/clients/${enc(clientUuid)}/roles/${enc(name)}` : `/roles/${enc(name)}`;
  const manage = clientUuid ? access.manageClients : access.manageRealm;
  const role = await api.get(rolePath);
  const owner = clientUuid ? `client role of ${byId.get(clientUuid)?.clientId || clientUuid}` : 'realm role';
  view.append(h('p', {}, h('a', { href: `#/${enc(realm)}/roles` }, '← All roles')),
    h('h2', {}, `${role.name} (${owner})`), role.description ? h('p', {}, role.description) : '');
  const box = section('Composite roles');
  const label = (r) => (r.clientRole ? `${byId.get(r.containerId)?.clientId || r.containerId}: ${r.name}` : r.name);
  const fill = async () => {
    const composites = await api.get(`${rolePath}/composites`);
    box.replaceChildren(h('h2', {}, 'Composite roles'),
      h('p', {}, `Whoever holds ${role.name} holds these roles too.`),
      table('Composites', ['Role', 'Kind', ''], composites.map((r) => [label(r), r.clientRole ? 'client role' : 'realm role',
        manage ? h('button', {
          type: 'button',
          'aria-label': `Remove composite ${label(r)}`,
          onclick: action(box, async () => {
            await api.del(`${rolePath}/composites`, [{ id: r.id, name: r.name }]);
            notify(`${label(r)} removed from ${role.name}`);
            await fill();
          }),
        }, 'Remove') : ''])));
    if (!manage) return;
    const taken = new Set([role.id, ...composites.map((r) => r.id)]);
    // Where the role to add comes from: the realm, or one client.
    const from = select('from', [['', 'Realm roles'], ...clients.map((c) => [c.id, `Roles of ${c.clientId}`])]);
    const choice = select('role', []);
    const options = async () => {
      const list = from.value ? await api.get(`/clients/${enc(from.value)}/roles`) : await api.get('/roles');
      choice.replaceChildren(...list.filter((r) => !taken.has(r.id)).map((r) => h('option', { value: r.id, dataset: { name: r.name } }, r.name)));
    };
    from.addEventListener('change', action(box, options));
    await options();
    box.append(form('Add composite role', [field('Composite from', from), field('Composite role', choice)],
      'Add composite', async () => {
        const picked = choice.selectedOptions[0];
        if (!picked) throw new Error('No role to add');
        await api.post(`${rolePath}/composites`, [{ id: picked.value, name: picked.dataset.name }]);
        notify(`${picked.dataset.name} added to ${role.name}`);
        await fill();
      }));
  };
  await fill();
  view.append(box);
}

/** One client scope and its protocol mappers. */
async function renderScope(view, { realm, access }, id) {
  const api = realmApi(realm);
  const scopePath = `/client-scopes/${enc(id)}`;
  const models = `${scopePath}/protocol-mappers/models`;
  const scope = await api.get(scopePath);
  const manage = access.manageClients;
  view.append(h('p', {}, h('a', { href: `#/${enc(realm)}/roles` }, '← All roles and scopes')),
    h('h2', {}, `Client scope ${scope.name}`));
  const clients = await api.get('/clients');
  const box = section('Protocol mappers');
  const fill = async () => {
    const mappers = await api.get(models);
    box.replaceChildren(h('h2', {}, 'Protocol mappers'),
      h('p', {}, `Applied to every token the ${scope.name} scope is given to. An audience mapper names its client in aud.`),
      table('Protocol mappers', ['Name', 'Type', 'Audience', ''], mappers.map((m) => [m.name, m.protocolMapper,
        m.config?.['included.client.audience'] || '',
        manage ? h('button', {
          type: 'button',
          'aria-label': `Delete mapper ${m.name}`,
          onclick: action(box, async () => {
            await api.del(`${models}/${enc(m.id)}`);
            notify(`Mapper ${m.name} deleted`);
            await fill();
          }),
        }, 'Delete') : ''])));
    if (manage) {
      box.append(form('Add audience mapper', [
        field('Audience client', select('audience', clients.map((c) => [c.clientId, c.clientId]))),
        field('Mapper name', input({ name: 'name', placeholder: 'default: <client> audience' })),
      ], 'Add audience mapper', async (data) => {
        const audience = String(data.get('audience'));
        const name = String(data.get('name') || '').trim() || `${audience} audience`;
        await api.post(models, {
          name,
          protocol: 'openid-connect',
          protocolMapper: AUDIENCE_MAPPER,
          config: { 'included.client.audience': audience, 'access.token.claim': 'true', 'id.token.claim': 'false' },
        });
        notify(`${audience} added to the audience of tokens with ${scope.name}`);
        await fill();
      }));
    }
  };
  await fill();
  view.append(box);
}
