// Realms: the list (for master administrators, with creation), and the current realm's
// settings: enabled, display name, token and session lifespans.

import { call, enc, realmApi } from './api.js';
import { field, form, h, input, notify, section, table } from './ui.js';

export async function render(view, { realm, access, me }) {
  const api = realmApi(realm);
  const rep = await api.get();
  const manage = access.manageRealm;
  const number = (name, value) => input({ name, type: 'number', min: 0, value: value ?? '', disabled: !manage });
  const fields = [
    field('Enabled', h('input', { type: 'checkbox', name: 'enabled', checked: rep.enabled !== false, disabled: !manage })),
    field('Display name', input({ name: 'displayName', value: rep.displayName ?? '', disabled: !manage })),
    field('Access token lifespan (seconds)', number('accessTokenLifespan', rep.accessTokenLifespan)),
    field('SSO session idle timeout (seconds)', number('ssoSessionIdleTimeout', rep.ssoSessionIdleTimeout)),
    field('SSO session max lifespan (seconds)', number('ssoSessionMaxLifespan', rep.ssoSessionMaxLifespan)),
    field('Default roles', input({ name: 'defaultRoles', value: (rep.defaultRoles || []).join(' '), disabled: !manage }),
      'Realm roles every user holds, space-separated.'),
    field('Exchanged tokens never outlive their subject token',
      h('input', { type: 'checkbox', name: 'exchangeLifetimeCappedBySubject', checked: rep.exchangeLifetimeCappedBySubject !== false, disabled: !manage })),
  ];
  const settings = manage
    ? form('Realm settings', fields, 'Save settings', async (data) => {
      const body = {
        enabled: data.has('enabled'),
        displayName: data.get('displayName'),
        accessTokenLifespan: Number(data.get('accessTokenLifespan')),
        ssoSessionIdleTimeout: Number(data.get('ssoSessionIdleTimeout')),
        ssoSessionMaxLifespan: Number(data.get('ssoSessionMaxLifespan')),
        exchangeLifetimeCappedBySubject: data.has('exchangeLifetimeCappedBySubject'),
      };
      // Sent only when changed: a new default role passes the API's escalation guard.
      const defaults = String(data.get('defaultRoles') || '').split(/\s+/).filter(Boolean);
      if (defaults.join(' ') !== (rep.defaultRoles || []).join(' ')) body.defaultRoles = defaults;
      await api.put('', body);
      notify('Realm settings saved');
    })
    : h('div', {}, fields);
  view.append(section('Settings', settings));

  let list;
  try {
    list = await call('GET', '/admin/realms?briefRepresentation=true');
  } catch {
    return;
  }
  const rows = list.map((r) => [
    h('a', { href: `#/${enc(r.realm)}/settings` }, r.realm),
    r.enabled === false ? 'disabled' : 'enabled',
  ]);
  const parts = [table('Realms', ['Realm', 'State'], rows)];
  if (me.createRealm) {
    parts.push(form('Create realm', [field('Realm name', input({ name: 'realm', required: true }))],
      'Create realm', async (data) => {
        const name = data.get('realm');
        await call('POST', '/admin/realms', { realm: name, enabled: true });
        notify(`Realm ${name} created`);
        // The token stays in memory: no reload, the picker learns the new realm in place.
        document.getElementById('realm-picker').append(h('option', { value: name }, name));
        location.hash = `#/${enc(name)}/settings`;
      }));
  }
  view.append(section('All realms', ...parts));
}
