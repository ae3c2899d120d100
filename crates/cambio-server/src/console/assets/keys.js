// Keys: the realm's published signing keys (its JWKS) and rotation.

import { basePath } from './auth.js';
import { action, h, notify, section, table } from './ui.js';
import { enc, realmApi } from './api.js';

export async function render(view, { realm, access }) {
  const box = section('Signing keys');
  const fill = async () => {
    const response = await fetch(`${basePath}/realms/${enc(realm)}/protocol/openid-connect/certs`, { credentials: 'omit' });
    const jwks = await response.json();
    box.replaceChildren(h('h2', {}, 'Signing keys'),
      table('Published keys', ['Key id', 'Algorithm', 'Type', 'Use'],
        (jwks.keys || []).map((k) => [k.kid, k.alg || '', k.kty, k.use || ''])));
    if (access.manageRealm) {
      box.append(h('button', {
        type: 'button',
        onclick: action(box, async () => {
          const answer = await realmApi(realm).post('/keys/rotate');
          notify(`Rotated; new key ${answer?.kid || ''}`);
          await fill();
        }),
      }, 'Rotate keys'));
    }
  };
  await fill();
  view.append(box);
}
