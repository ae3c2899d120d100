// Events: the audit trail, filtered by type, client, user and day, with the reason of each
// refusal and the trace id of the request.

import { realmApi } from './api.js';
import { field, form, h, input, section, table } from './ui.js';

export async function render(view, { realm }) {
  const api = realmApi(realm);
  const results = h('div', {});
  const search = async (filter) => {
    const query = new URLSearchParams({ max: '100' });
    for (const [key, value] of Object.entries(filter)) if (value) query.set(key, value);
    const events = await api.get(`/events?${query}`);
    results.replaceChildren(table('Events', ['Time', 'Type', 'Client', 'User', 'Error', 'Reason', 'Trace id', 'Details'],
      events.map((e) => {
        const details = { ...(e.details || {}) };
        const reason = details.reason || '';
        const trace = details.trace_id || '';
        delete details.reason;
        delete details.trace_id;
        return [new Date(e.time).toISOString(), e.type, e.clientId || '', e.userId || '', e.error || '',
          reason, trace, Object.entries(details).map(([k, v]) => `${k}=${v}`).join(' ')];
      })));
    results.querySelector('table')?.classList.add('events');
  };
  view.append(section('Filter', form('Filter events', [
    field('Type (e.g. TOKEN_EXCHANGE, TOKEN_EXCHANGE_ERROR)', input({ name: 'type' })),
    field('Client ID', input({ name: 'client' })),
    field('User ID', input({ name: 'user' })),
    field('From (yyyy-mm-dd)', input({ name: 'dateFrom', type: 'date' })),
    field('To (yyyy-mm-dd)', input({ name: 'dateTo', type: 'date' })),
  ], 'Search events', (data) => search(Object.fromEntries(data)), { role: 'search' })), results);
  await search({});
}
