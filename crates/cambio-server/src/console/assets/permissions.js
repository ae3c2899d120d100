// Legacy (V1) permissions, as the token exchange guide's console steps describe them: switch
// on management permissions of a target client, then give its `token-exchange` permission a
// client policy that names the requester.

import { ApiError, enc, realmApi } from './api.js';
import { action, field, form, h, input, notify, section, select, table } from './ui.js';

export async function render(view, { realm, access, rest, go }) {
  const api = realmApi(realm);
  const clients = await api.get('/clients');
  const byId = new Map(clients.map((c) => [c.id, c]));
  const targets = clients.filter((c) => c.clientId !== 'realm-management');
  const targetId = rest[0] || '';
  const picker = form('Pick target client', [
    field('Target client (the audience)', select('target', [['', '— choose —'], ...targets.map((c) => [c.id, c.clientId])], targetId)),
  ], 'Show permissions', (data) => go('permissions', data.get('target')));
  view.append(picker);
  if (!targetId) return;
  const target = byId.get(targetId);
  if (!target) throw new ApiError(404, 'Client not found');
  const mpPath = `/clients/${enc(targetId)}/management/permissions`;
  const state = await api.get(mpPath);
  const manage = access.manageClients && access.manageAuthorization;

  const switchBox = h('input', { type: 'checkbox', name: 'enabled', checked: !!state.enabled, disabled: !access.manageClients });
  view.append(section(`Permissions of ${target.clientId}`,
    field('Permissions enabled', switchBox, 'Creates the view, manage, map-roles and token-exchange permissions of this client.'),
    access.manageClients ? h('div', { class: 'actions' }, h('button', {
      type: 'button',
      onclick: action(view, async () => {
        await api.put(mpPath, { enabled: switchBox.checked });
        notify(`Permissions ${switchBox.checked ? 'enabled' : 'disabled'} for ${target.clientId}`);
        go('permissions', targetId);
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      }),
    }, 'Apply')) : ''));
  const permissionId = state.scopePermissions?.['token-exchange'];
  if (!state.enabled || !permissionId) return;

  view.append(await exchangePermission(api, {
    permissionId, clients, what: `tokens for ${target.clientId}`, manage, exclude: targetId,
  }));
}

/**
 * A `token-exchange` permission (of a client or of an identity provider) and its policies:
 * the clients named by them may exchange `what` (e.g. "tokens for orders-api"). Policies
 * live in realm-management's authorization settings, as in Keycloak.
 */
export async function exchangePermission(api, { permissionId, clients, what, manage, exclude }) {
  const byId = new Map(clients.map((c) => [c.id, c]));
  const management = clients.find((c) => c.clientId === 'realm-management');
  const authz = `/clients/${enc(management.id)}/authz/resource-server`;
  const box = section('token-exchange permission');
  const fill = async () => {
    const associated = await api.get(`${authz}/policy/${enc(permissionId)}/associatedPolicies`);
    const names = (p) => {
      try {
        return JSON.parse(p.config?.clients || '[]').map((id) => byId.get(id)?.clientId || id).join(', ');
      } catch {
        return '';
      }
    };
    box.replaceChildren(h('h2', {}, 'token-exchange permission'),
      h('p', {}, `Clients named by these policies may exchange ${what}.`),
      table('Policies of the token-exchange permission', ['Policy', 'Type', 'Clients', ''], associated.map((p) => [
        p.name, p.type, names(p),
        manage ? h('button', {
          type: 'button',
          'aria-label': `Remove policy ${p.name}`,
          onclick: action(box, async () => {
            await api.put(`${authz}/permission/scope/${enc(permissionId)}`,
              { policies: associated.filter((q) => q.id !== p.id).map((q) => q.id) });
            notify(`Policy ${p.name} removed from the permission`);
            await fill();
          }),
        }, 'Remove') : '',
      ])));
    if (manage) {
      const requesters = clients.filter((c) => c.id !== exclude && c.clientId !== 'realm-management');
      box.append(form('Allow a client to exchange', [
        field('Requester client', select('requester', requesters.map((c) => [c.id, c.clientId]))),
        field('Policy name', input({ name: 'name', placeholder: 'default: <requester>-exchange-policy' })),
      ], 'Allow exchange', async (data) => {
        const requester = byId.get(data.get('requester'));
        const name = String(data.get('name') || '').trim() || `${requester.clientId}-exchange-policy`;
        let policyId;
        try {
          policyId = (await api.post(`${authz}/policy/client`, { name, clients: [requester.id], logic: 'POSITIVE' })).id;
        } catch (error) {
          if (error.status !== 409) throw error;
          // A policy of that name exists: use it.
          const found = await api.get(`${authz}/policy?name=${enc(name)}&type=client`);
          policyId = found.find((p) => p.name === name)?.id;
          if (!policyId) throw error;
        }
        await api.put(`${authz}/permission/scope/${enc(permissionId)}`,
          { policies: [...associated.map((p) => p.id), policyId] });
        notify(`${requester.clientId} may now exchange ${what}`);
        await fill();
      }));
    }
  };
  await fill();
  return box;
}
