// Realm roles and client scopes: list and create; a role's composites are shown.

import { realmApi } from './api.js';
import { field, form, h, input, notify, section, table } from './ui.js';

export async function render(view, { realm, access }) {
  const api = realmApi(realm);
  const [roles, scopes] = await Promise.all([api.get('/roles'), api.get('/client-scopes')]);
  const rolesBox = section('Realm roles', table('Realm roles', ['Role', 'Description', 'Composite'],
    roles.map((r) => [r.name, r.description || '', r.composite ? 'yes' : 'no'])));
  if (access.manageRealm) {
    rolesBox.append(form('Create realm role', [
      field('Role name', input({ name: 'name', required: true, autocomplete: 'off' })),
      field('Description', input({ name: 'description' })),
    ], 'Create role', async (data) => {
      const body = { name: data.get('name') };
      if (data.get('description')) body.description = data.get('description');
      await api.post('/roles', body);
      notify(`Role ${body.name} created`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }));
  }
  const scopesBox = section('Client scopes', table('Client scopes', ['Scope', 'Protocol', 'In token scope'],
    scopes.map((s) => [s.name, s.protocol || 'openid-connect',
      s.attributes?.['include.in.token.scope'] === 'false' ? 'no' : 'yes'])));
  if (access.manageRealm) {
    scopesBox.append(form('Create client scope', [
      field('Scope name', input({ name: 'name', required: true, autocomplete: 'off' })),
    ], 'Create scope', async (data) => {
      await api.post('/client-scopes', { name: data.get('name'), protocol: 'openid-connect' });
      notify(`Client scope ${data.get('name')} created`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }));
  }
  view.append(rolesBox, scopesBox);
}
