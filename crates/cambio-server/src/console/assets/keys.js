// Keys: the realm's keys as the admin API lists them (which signs, which only verifies, their
// priority and until when they are published), and rotation.

import { action, h, notify, section, table } from './ui.js';
import { realmApi } from './api.js';

function until(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '';
}

export async function render(view, { realm, access }) {
  const api = realmApi(realm);
  const box = section('Signing keys');
  const fill = async () => {
    const listed = await api.get('/keys');
    const signing = new Set(Object.values(listed.active || {}));
    box.replaceChildren(h('h2', {}, 'Signing keys'),
      h('p', {}, 'Active keys may sign (the highest priority of each algorithm does); passive keys only verify tokens signed before a rotation.'),
      table('Keys', ['Key id', 'Algorithm', 'Type', 'Status', 'Priority', 'Published until', 'Signs now'],
        (listed.keys || []).map((k) => [
          h('code', {}, k.kid), k.algorithm, k.type,
          h('span', { class: `key-${String(k.status).toLowerCase()}` }, k.status),
          String(k.providerPriority), until(k.validTo), signing.has(k.kid) ? 'yes' : 'no',
        ])));
    if (access.manageRealm) {
      box.append(h('button', {
        type: 'button',
        onclick: action(box, async () => {
          const answer = await api.post('/keys/rotate');
          notify(`Rotated; new key ${answer?.kid || ''}`);
          await fill();
        }),
      }, 'Rotate keys'));
    }
  };
  await fill();
  view.append(box);
}
