// Signing in (into an HttpOnly session cookie the page cannot read) and registering.

import { explain, post } from '../api.js';
import { h } from '../dom.js';
import { serverInfo, session, signedIn } from '../app.js';

function field(label, attrs) {
  const id = `f-${attrs.name}`;
  return h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, ...attrs }));
}

function form(title, intro, fields, submitText, onSubmit, footer) {
  const error = h('p', { class: 'notice error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary' }, submitText);
  const el = h('form', { class: 'card narrow', novalidate: true }, h('h1', null, title), intro, ...fields, error, button, footer);
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await onSubmit(new FormData(el));
    } catch (err) {
      error.textContent = err.status === 401 ? 'The email or the password is wrong.' : explain(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

export async function signIn() {
  await serverInfo().catch(() => null);
  if (session.me) {
    signedIn(session.me);
    return null;
  }
  return form('Sign in', h('p', null, 'Your audiences, with their sample sizes and intervals.'),
    [field('Email', { name: 'email', type: 'email', autocomplete: 'username', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })],
    'Sign in',
    async (data) => {
      const me = await post('/auth/session', { email: data.get('email'), password: data.get('password') });
      signedIn(me);
    },
    session.server && session.server.registration_open ? h('p', null, 'New here? ', h('a', { href: '#/register' }, 'Create an account')) : null);
}

export async function register() {
  await serverInfo().catch(() => null);
  if (session.server && !session.server.registration_open) {
    return h('div', { class: 'card narrow' }, h('h1', null, 'Registration is closed'),
      h('p', null, 'Ask the administrator of this server for an account.'), h('p', null, h('a', { href: '#/login' }, 'Sign in')));
  }
  return form('Create an account', h('p', null, 'A password of at least 10 characters.'),
    [field('Email', { name: 'email', type: 'email', autocomplete: 'username', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: '10', required: true })],
    'Create the account',
    async (data) => {
      const creds = { email: data.get('email'), password: data.get('password') };
      await post('/auth/register', creds);
      signedIn(await post('/auth/session', creds));
    },
    h('p', null, 'Already registered? ', h('a', { href: '#/login' }, 'Sign in')));
}
