// The dashboard: a hash router over pages, the signed-in user, and the designed answers to
// the usual failures (signed out, too many requests, server unreachable).

import { explain, get, on, post } from './api.js';
import { announce, h, mount, name } from './dom.js';
import * as accounts from './pages/accounts.js';
import * as account from './pages/account.js';
import * as admin from './pages/admin.js';
import * as compare from './pages/compare.js';
import * as history from './pages/history.js';
import * as login from './pages/login.js';
import * as methodology from './pages/methodology.js';
import * as settings from './pages/settings.js';
import * as shared from './pages/shared.js';
import * as upload from './pages/upload.js';

export const session = { me: null, server: null };

const routes = [
  [/^\/login$/, login.signIn, false],
  [/^\/register$/, login.register, false],
  [/^\/methodology$/, methodology.page, false],
  [/^\/shared\/([A-Za-z0-9_-]{10,100})$/, shared.page, false],
  [/^\/accounts$/, accounts.page, true],
  [/^\/accounts\/(\d+)$/, account.page, true],
  [/^\/accounts\/(\d+)\/history$/, history.page, true],
  [/^\/accounts\/(\d+)\/upload$/, upload.page, true],
  [/^\/compare$/, compare.page, true],
  [/^\/settings$/, settings.page, true],
  [/^\/admin$/, admin.page, true],
];

let current = null;

export function go(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = `#${path}`;
}

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/accounts';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

function nav() {
  const links = session.me
    ? [['#/accounts', 'Accounts'], ['#/compare', 'Compare'], ['#/settings', 'Keys & usage'],
      ...(session.me.is_admin ? [['#/admin', 'Administration']] : []), ['#/methodology', 'Methodology']]
    : [['#/login', 'Sign in'], ['#/methodology', 'Methodology']];
  const here = `#${parse().path}`;
  mount(document.getElementById('nav'), h('ul', null, links.map(([href, text]) =>
    h('li', null, h('a', { href, 'aria-current': here === href || here.startsWith(`${href}/`) ? 'page' : null }, text)))));
  mount(document.getElementById('user'), session.me
    ? [h('span', { class: 'who' }, name(session.me.email)), h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out')]
    : null);
}

async function signOut() {
  try {
    await post('/auth/logout');
  } catch (e) {
    if (e.status !== 401) {
      announce(explain(e), 'error');
      return;
    }
  }
  session.me = null;
  announce('You are signed out.');
  go('/login');
}

export async function route() {
  const { path, query } = parse();
  const main = document.getElementById('main');
  const found = routes.find(([re]) => re.test(path));
  if (!found) {
    mount(main, h('h1', null, 'Page not found'), h('p', null, 'There is nothing at this address. ', h('a', { href: '#/accounts' }, 'Go to your accounts.')));
    return;
  }
  const [re, page, needsLogin] = found;
  if (needsLogin && !session.me) {
    sessionStorage.setItem('after-login', path);
    go('/login');
    return;
  }
  if (current) current.abort();
  current = new AbortController();
  nav();
  announce('');
  const params = path.match(re).slice(1);
  try {
    const node = await page({ params, query, session, signal: current.signal, go });
    if (node) {
      mount(main, node);
      const title = main.querySelector('h1, h2');
      document.title = title ? `${title.textContent} – AudienceLens` : 'AudienceLens';
      main.focus({ preventScroll: true });
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e.status === 401) return;
    mount(main, h('h1', null, 'Something went wrong'), h('p', { class: 'notice error' }, explain(e)),
      h('p', null, h('button', { type: 'button', onclick: route }, 'Try again')));
  }
}

on('unauthorized', () => {
  if (!session.me) return;
  session.me = null;
  sessionStorage.setItem('after-login', parse().path);
  announce('Your session has ended: please sign in again.', 'warn');
  go('/login');
});

// The server's capabilities, asked for once, when a page needs them.
export async function serverInfo() {
  if (!session.server) session.server = await get('/server');
  return session.server;
}

async function boot() {
  try {
    session.me = (await get('/auth/session')).user;
  } catch (e) {
    announce(explain(e), 'error');
  }
  window.addEventListener('hashchange', route);
  await route();
}

export function signedIn(me) {
  session.me = me;
  const next = sessionStorage.getItem('after-login');
  sessionStorage.removeItem('after-login');
  go(next && next !== '/login' ? next : '/accounts');
}

boot();
