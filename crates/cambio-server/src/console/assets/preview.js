// Exchange preview: what a token exchange would issue, or its exact refusal and the rule
// behind it, computed by the server with the token endpoint's own decision code. Nothing is
// signed or stored; the answer holds claims only.

import { realmApi } from './api.js';
import { field, form, h, input, json, section, select } from './ui.js';

const TYPES = [
  ['urn:ietf:params:oauth:token-type:access_token', 'Access token'],
  ['urn:ietf:params:oauth:token-type:refresh_token', 'Refresh token'],
  ['urn:ietf:params:oauth:token-type:id_token', 'ID token'],
];

export async function render(view, { realm, access }) {
  const api = realmApi(realm);
  const [clients, users] = await Promise.all([api.get('/clients'), api.get('/users?max=200&briefRepresentation=true')]);
  const usable = clients.filter((c) => !c.bearerOnly);
  const clientOptions = usable.map((c) => [c.clientId, c.clientId]);
  const result = h('div', { id: 'preview-result', 'aria-live': 'polite' });

  const userFields = h('fieldset', { class: 'subject-user' }, h('legend', {}, 'Subject: a user signing in'),
    field('User', select('userId', users.map((u) => [u.id, u.username]))),
    field('Signed in through client', select('subjectClient', clientOptions)),
    field('Sign-in scope', input({ name: 'subjectScope', placeholder: 'e.g. openid profile' })));
  // Identity providers are realm settings: offered when the caller may read them.
  const providers = access.viewRealm ? await api.get('/identity-provider/instances').catch(() => []) : [];
  const tokenFields = h('fieldset', { class: 'subject-token', hidden: true }, h('legend', {}, 'Subject: a pasted token'),
    field('Subject token', h('textarea', { name: 'subjectToken', rows: 4, spellcheck: 'false' }),
      'An access token of this realm, or a token of an identity provider; it must verify and be valid now.'),
    field('Identity provider (for an external token)',
      select('subjectIssuer', [['', '— none: a token of this realm —'], ...providers.map((p) => [p.alias, p.alias])])));
  const mode = select('mode', [['user', 'A user signing in'], ['token', 'A pasted token']], 'user');
  mode.addEventListener('change', () => {
    userFields.hidden = mode.value !== 'user';
    tokenFields.hidden = mode.value !== 'token';
  });

  view.append(form('Exchange preview', [
    field('Requester client', select('requester', clientOptions)),
    field('Subject', mode),
    userFields, tokenFields,
    field('Audience (space-separated client IDs)', input({ name: 'audience' })),
    field('Scope', input({ name: 'scope' })),
    field('Requested token type', select('requestedTokenType', TYPES)),
    field('Actor token (optional)', h('textarea', { name: 'actorToken', rows: 3, spellcheck: 'false' }),
      'Delegation: an access token of this realm issued to the requester; the result names it in act.'),
  ], 'Preview exchange', async (data) => {
    const body = {
      requester: data.get('requester'),
      audience: String(data.get('audience') || '').split(/\s+/).filter(Boolean),
      requestedTokenType: data.get('requestedTokenType'),
    };
    const actorToken = String(data.get('actorToken') || '').trim();
    if (actorToken) {
      body.actorToken = actorToken;
      body.actorTokenType = 'urn:ietf:params:oauth:token-type:access_token';
    }
    const scope = String(data.get('scope') || '').trim();
    if (scope) body.scope = scope;
    if (data.get('mode') === 'token') {
      body.subjectToken = String(data.get('subjectToken') || '').trim();
      if (data.get('subjectIssuer')) body.subjectIssuer = data.get('subjectIssuer');
    } else {
      body.userId = data.get('userId');
      body.subjectClient = data.get('subjectClient');
      const subjectScope = String(data.get('subjectScope') || '').trim();
      if (subjectScope) body.subjectScope = subjectScope;
    }
    result.replaceChildren(show(await api.post('/cambio/exchange-preview', body)));
  }), result);
}

function show(answer) {
  if (answer.outcome === 'refused') {
    return section('Refused',
      h('dl', { class: 'outcome refused' },
        h('dt', {}, 'HTTP status'), h('dd', {}, String(answer.status)),
        h('dt', {}, 'error'), h('dd', { class: 'error-code' }, answer.error),
        h('dt', {}, 'error_description'), h('dd', { class: 'error-description' }, answer.error_description),
        h('dt', {}, 'Step'), h('dd', {}, answer.stage),
        h('dt', {}, 'Rule'), h('dd', { class: 'rule' }, answer.rule || '—'),
        answer.detail ? [h('dt', {}, 'Why the token was refused'), h('dd', { class: 'detail' }, answer.detail)] : []));
  }
  const kind = answer.permissionModel.kind;
  const model = kind === 'legacy' ? `fine-grained permission (V1) of ${answer.permissionModel.target}`
    : kind === 'provider' ? `identity provider ${answer.permissionModel.provider}`
      : 'standard token exchange (V2)';
  const user = answer.externalSubject
    ? [h('dt', {}, 'Local user'), h('dd', { class: 'local-user' }, answer.userCreated
      ? `${answer.username} (would be created at the first exchange)` : answer.username)]
    : [];
  return section('Would be issued',
    h('dl', { class: 'outcome issued' },
      h('dt', {}, 'Permitted by'), h('dd', {}, model),
      h('dt', {}, 'issued_token_type'), h('dd', {}, answer.issued_token_type),
      h('dt', {}, 'expires_in'), h('dd', {}, String(answer.expires_in)),
      h('dt', {}, 'scope'), h('dd', {}, answer.scope || '(none)'),
      h('dt', {}, 'Refresh token'), h('dd', {}, answer.refreshToken ? `yes, ${answer.refreshToken.lifetime} s` : 'no'),
      answer.accessToken?.act ? [h('dt', {}, 'Acting party (act)'),
        h('dd', { class: 'actor' }, `${answer.accessToken.act.sub} through ${answer.accessToken.act.client_id}`)] : [],
      user),
    h('h3', {}, 'Access token claims'), json(answer.accessToken),
    answer.idToken ? [h('h3', {}, 'ID token claims'), json(answer.idToken)] : [],
    h('details', {}, h('summary', {}, 'Subject token claims'), json(answer.subject)));
}
