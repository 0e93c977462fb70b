// Administrators: erasure requests (everything about an Instagram user, everywhere, for good)
// and access requests (everything held about them).

import { explain, get, post } from '../api.js';
import { h, mount } from '../dom.js';

export async function page(ctx) {
  if (!ctx.session.me.is_admin) {
    return h('div', null, h('h1', null, 'Administration'), h('p', { class: 'notice error' }, 'Only administrators can see this page.'));
  }
  const out = h('div', { 'aria-live': 'polite' });
  const input = (id) => h('input', { id, name: 'handle', required: true, autocomplete: 'off', placeholder: '@username' });
  const eraseHandle = input('erase-handle');
  const confirmBox = h('input', { id: 'erase-confirm', type: 'checkbox', required: true });
  const erase = h('form', { class: 'panel' }, h('h2', null, 'Erase a person'),
    h('p', null, 'Deletes their profile, comments, pictures and classifications for every user of this server, redacts their handle in others\' comments, and keeps them out of future scrapes and imports.'),
    h('div', { class: 'field' }, h('label', { for: 'erase-handle' }, 'Instagram handle'), eraseHandle),
    h('div', { class: 'field' }, h('label', { for: 'erase-confirm' }, confirmBox, ' I understand this cannot be undone')),
    h('button', { type: 'submit', class: 'danger' }, 'Erase'));
  erase.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const report = await post('/admin/erasures', { handle: eraseHandle.value });
      mount(out, h('h2', null, 'Erased'), h('pre', { class: 'json' }, JSON.stringify(report, null, 2)));
      erase.reset();
    } catch (err) { mount(out, h('p', { class: 'notice error' }, explain(err))); }
  });
  const lookHandle = input('look-handle');
  const look = h('form', { class: 'panel' }, h('h2', null, 'Access request'),
    h('p', null, 'Everything held about a person, as JSON (the look-up is recorded in the audit log).'),
    h('div', { class: 'field' }, h('label', { for: 'look-handle' }, 'Instagram handle'), lookHandle),
    h('button', { type: 'submit' }, 'Look up'));
  look.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const data = await get(`/admin/people/${encodeURIComponent(lookHandle.value.replace(/^@/, ''))}`);
      mount(out, h('h2', null, 'What is held'), h('pre', { class: 'json' }, JSON.stringify(data, null, 2)));
    } catch (err) { mount(out, h('p', { class: 'notice error' }, explain(err))); }
  });
  return h('div', null, h('h1', null, 'Administration'), h('div', { class: 'grid-2' }, erase, look), out);
}
