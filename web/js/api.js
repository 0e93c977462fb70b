// The dashboard's only way to the server: the public /api/v1 routes, like any other client.
// The session lives in an HttpOnly cookie the page cannot read; every request carries the
// header that lets the server tell the dashboard from a form on another site.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const message = (body && body.message) || (typeof body === 'string' && body) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = body && body.error;
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
  }
}

export class Offline extends Error {
  constructor() {
    super('The server cannot be reached. Check your connection, or whether AudienceLens is running; the page retries when you act again.');
    this.status = 0;
  }
}

const listeners = { unauthorized: [], calls: [] };

export function on(event, fn) {
  listeners[event].push(fn);
}

export const BASE = '/api/v1';

export async function api(method, path, { body, signal } = {}) {
  const headers = { 'X-Requested-With': 'audiencelens', Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  for (const fn of listeners.calls) fn(method, path);
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Offline();
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const error = new ApiError(res.status, data, res.headers.get('Retry-After'));
    if (res.status === 401) for (const fn of listeners.unauthorized) fn(error);
    throw error;
  }
  return data;
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, body) => api('POST', path, { body });
export const patch = (path, body) => api('PATCH', path, { body });
export const del = (path) => api('DELETE', path);

// Uploads files as multipart/form-data with progress (fetch gives none for uploads).
export function upload(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const f of files) form.append('files', f, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', BASE + path);
    xhr.setRequestHeader('X-Requested-With', 'audiencelens');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress && onProgress(e.loaded, e.total);
    xhr.onerror = () => reject(new Offline());
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = xhr.responseText;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        const error = new ApiError(xhr.status, data, xhr.getResponseHeader('Retry-After'));
        if (xhr.status === 401) for (const fn of listeners.unauthorized) fn(error);
        reject(error);
      }
    };
    for (const fn of listeners.calls) fn('POST', path);
    xhr.send(form);
  });
}

// What to tell a person about a failed call.
export function explain(error) {
  if (!error) return '';
  if (error.status === 429) {
    return `Too many requests: please wait ${error.retryAfter ? `${error.retryAfter} s` : 'a moment'} and try again.`;
  }
  if (error.status === 401) return 'Your session has ended: please sign in again.';
  if (error.status >= 500) return 'The server had a problem with this request (the details are in its log). Please try again later.';
  return error.message || String(error);
}
