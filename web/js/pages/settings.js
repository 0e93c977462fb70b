// API keys (shown once, revocable), the password, and what Gemini cost per account and
// analysis.

import { del, explain, get, post } from '../api.js';
import { announce, h, mount, name } from '../dom.js';
import { count, dateTime, usd } from '../format.js';

function keys() {
  const list = h('tbody');
  const shown = h('div', { role: 'status' });
  const refresh = async () => {
    const items = await get('/api-keys');
    mount(list, items.length ? items.map((k) => h('tr', null,
      h('td', null, name(k.name)), h('td', null, h('code', null, `${k.key_prefix}…`)), h('td', null, dateTime(k.created_at)),
      h('td', null, k.last_used_at ? dateTime(k.last_used_at) : 'never'),
      h('td', null, k.revoked_at ? `revoked ${dateTime(k.revoked_at)}` : h('button', { type: 'button', class: 'danger small', onclick: async () => {
        try { await del(`/api-keys/${k.id}`); announce('Key revoked.'); await refresh(); } catch (e) { announce(explain(e), 'error'); }
      } }, 'Revoke')))) : h('tr', null, h('td', { colspan: '5', class: 'muted' }, 'No keys.')));
  };
  const label = h('input', { id: 'key-name', name: 'name', maxlength: '100', required: true, placeholder: 'e.g. nightly report script' });
  const form = h('form', { class: 'inline-form' }, h('label', { for: 'key-name' }, 'New key for '), label, h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const made = await post('/api-keys', { name: label.value });
      label.value = '';
      mount(shown, h('p', { class: 'notice' }, 'Copy the key now: it is shown once. ', h('code', { class: 'secret' }, made.key)));
      await refresh();
    } catch (err) { announce(explain(err), 'error'); }
  });
  refresh().catch((e) => announce(explain(e), 'error'));
  return h('section', { class: 'panel' }, h('h2', null, 'API keys'),
    h('p', { class: 'meta' }, 'For scripts: send a key as "Authorization: Bearer <key>". Keys are stored hashed and stop working when revoked.'),
    form, shown,
    h('div', { class: 'scroll' }, h('table', { class: 'data' }, h('thead', null, h('tr', null, ['Name', 'Key', 'Created', 'Last used', ''].map((c) => h('th', { scope: 'col' }, c)))), list)));
}

function password() {
  const message = h('p', { role: 'status' });
  const field = (id, label, auto) => h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name: id, type: 'password', autocomplete: auto, required: true }));
  const form = h('form', null, field('current_password', 'Current password', 'current-password'), field('new_password', 'New password (at least 10 characters)', 'new-password'),
    h('button', { type: 'submit' }, 'Change the password'), message);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      await post('/auth/password', { current_password: data.get('current_password'), new_password: data.get('new_password') });
      form.reset();
      message.className = 'notice';
      message.textContent = 'Password changed; every other session of yours has ended.';
    } catch (err) {
      message.className = 'notice error';
      message.textContent = explain(err);
    }
  });
  return h('section', { class: 'panel' }, h('h2', null, 'Password'), form);
}

async function usage() {
  const u = await get('/usage');
  const row = (label, s) => h('tr', null, h('th', { scope: 'row' }, label), h('td', { class: 'num' }, count(s.requests)), h('td', { class: 'num' }, count(s.pictures)),
    h('td', { class: 'num' }, count(s.total_tokens)), h('td', { class: 'num' }, usd(s.cost_usd ?? (s.cost_nano_usd || 0) / 1e9, 6)));
  const head = h('thead', null, h('tr', null, ['', 'Requests', 'Pictures', 'Tokens', 'Cost'].map((c) => h('th', { scope: 'col' }, c))));
  return h('section', { class: 'panel' }, h('h2', null, 'Gemini usage and cost'),
    h('p', { class: 'meta' }, 'Only the gemini and cascade classifiers use Gemini; the local model costs nothing.'),
    h('div', { class: 'scroll' }, h('table', { class: 'data' }, head, h('tbody', null,
      row('All', u.total),
      u.accounts.map((a) => row(a.handle ? `@${a.handle}` : `account ${a.tracked_account_id}`, a)),
      u.analyses.map((a) => row(`analysis ${a.analysis_id}`, a))))));
}

export async function page() {
  return h('div', null, h('h1', null, 'Keys, password and usage'), keys(), password(), await usage());
}
