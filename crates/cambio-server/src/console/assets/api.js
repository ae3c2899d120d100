// The admin REST API, as scripts call it. Errors carry the server's own words
// (`errorMessage` of the admin API, `error_description` of OAuth answers).

import { accessToken, basePath, renew } from './auth.js';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function send(method, path, body) {
  const headers = { Authorization: `Bearer ${accessToken()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(`${basePath}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
  });
}

/** Calls `path` (from the server's root, e.g. `/admin/realms`) and returns its JSON. */
export async function call(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 401) {
    await renew();
    response = await send(method, path, body);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.errorMessage || data?.error_description || data?.error
      || `${method} failed with HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  if (response.status === 201 && !data) {
    const location = response.headers.get('Location');
    return location ? { id: location.split('/').pop() } : {};
  }
  return data;
}

/** Shorthands for one realm's admin API. */
export function realmApi(realm) {
  const root = `/admin/realms/${encodeURIComponent(realm)}`;
  return {
    get: (path = '') => call('GET', root + path),
    post: (path, body) => call('POST', root + path, body ?? {}),
    put: (path, body) => call('PUT', root + path, body ?? {}),
    del: (path, body) => call('DELETE', root + path, body),
  };
}

export const enc = encodeURIComponent;
