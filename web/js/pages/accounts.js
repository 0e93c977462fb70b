// Tracked accounts: add one (an invalid handle is explained inline), change its schedule and
// limits, delete it after a confirmation, and see at a glance how each one's audience looks.

import { del, explain, get, patch, post } from '../api.js';
import { announce, h, mount, name, uid } from '../dom.js';
import { ago, ci, count, pct, stage } from '../format.js';
import { serverInfo } from '../app.js';
import { classifierChoice, startAnalysis } from './account.js';

function headline(a) {
  const hl = a.headline;
  if (!hl) return h('span', { class: 'muted' }, 'No audience yet');
  const parts = [];
  if (hl.female) parts.push(`women ${pct(hl.female.share)} ${ci(hl.female.ci95)}${hl.female.corrected ? '' : ' raw'}`);
  else parts.push('gender: no estimate');
  if (hl.largest_bracket) parts.push(`largest age bracket ${hl.largest_bracket.class} (${pct(hl.largest_bracket.share)})`);
  parts.push(`n = ${count(hl.unique_commenters)} commenters`);
  return h('span', null, parts.join(' · '));
}

function state(a) {
  const l = a.latest_analysis;
  if (!l) return h('span', { class: 'badge' }, 'not analysed');
  const running = l.status === 'queued' || l.status === 'running';
  return h('span', null,
    h('span', { class: `badge ${l.status}` }, l.status),
    running ? ` ${stage(l.stage)}` : '',
    l.status === 'failed' && l.error ? h('span', { class: 'muted' }, ` (${l.error.slice(0, 120)})`) : '',
    h('br'),
    h('span', { class: 'muted' }, a.last_analyzed_at ? `audience from ${ago(a.last_analyzed_at)}` : 'no completed analysis'));
}

function settingsDialog(a, onSaved) {
  const error = h('p', { class: 'notice error', role: 'alert', hidden: true });
  const id = uid('edit');
  const input = (label, attrs) => {
    const fid = uid('f');
    return h('div', { class: 'field' }, h('label', { for: fid }, label), h('input', { id: fid, ...attrs }));
  };
  const schedule = h('select', { id: `${id}-schedule`, name: 'schedule' },
    ['off', 'daily', 'weekly'].map((v) => h('option', { value: v, selected: a.schedule === v }, v)));
  const dialog = h('dialog', { 'aria-labelledby': id },
    h('form', { method: 'dialog' },
      h('h2', { id }, 'Settings of @', name(a.handle)),
      h('div', { class: 'field' }, h('label', { for: `${id}-schedule` }, 'Re-analyse'), schedule),
      input('Posts a scrape covers (newest)', { name: 'max_posts', type: 'number', min: '1', max: '500', value: a.max_posts }),
      input('Comments per post', { name: 'max_comments_per_post', type: 'number', min: '1', max: '5000', value: a.max_comments_per_post }),
      input('Budget per analysis, USD (empty: the server default)', { name: 'budget_usd', type: 'number', min: '0', step: '0.01', value: a.budget_usd ?? '' }),
      error,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', value: 'save' }, 'Save'),
        h('button', { type: 'submit', value: 'cancel', formnovalidate: true }, 'Cancel'))));
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'save') {
      dialog.remove();
      return;
    }
    const form = new FormData(dialog.querySelector('form'));
    const budget = form.get('budget_usd');
    try {
      await patch(`/accounts/${a.id}`, {
        schedule: form.get('schedule'),
        max_posts: Number(form.get('max_posts')),
        max_comments_per_post: Number(form.get('max_comments_per_post')),
        budget_usd: budget === '' ? null : Number(budget),
      });
      dialog.remove();
      announce(`Settings of @${a.handle} saved.`);
      onSaved();
    } catch (e) {
      error.textContent = explain(e);
      error.hidden = false;
      dialog.showModal();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}

function confirmDelete(a, onDone) {
  const id = uid('del');
  const dialog = h('dialog', { 'aria-labelledby': id, role: 'alertdialog' },
    h('form', { method: 'dialog' },
      h('h2', { id }, 'Stop tracking @', name(a.handle), '?'),
      h('p', null, 'Its analyses and reports are deleted. The posts and comments stay until the retention period ends, and other users who track the account keep theirs.'),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'danger', value: 'delete' }, 'Delete'),
        h('button', { type: 'submit', value: 'cancel', autofocus: true }, 'Keep it'))));
  dialog.addEventListener('close', async () => {
    dialog.remove();
    if (dialog.returnValue !== 'delete') return;
    try {
      await del(`/accounts/${a.id}`);
      announce(`@${a.handle} deleted.`);
      onDone();
    } catch (e) {
      announce(explain(e), 'error');
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}

function row(a, ctx, refresh) {
  const start = h('button', { type: 'button', onclick: () => startAnalysis(a, ctx, refresh) }, 'Analyse');
  const scraping = ctx.session.server && ctx.session.server.scraping;
  if (scraping && !scraping.available) {
    start.disabled = true;
    start.title = scraping.reason;
  }
  return h('tr', null,
    h('th', { scope: 'row' }, h('a', { href: `#/accounts/${a.id}` }, '@', name(a.handle))),
    h('td', null, state(a)),
    h('td', null, headline(a)),
    h('td', { class: 'row-actions' },
      h('a', { class: 'button', href: `#/accounts/${a.id}` }, 'Report'),
      h('a', { class: 'button', href: `#/accounts/${a.id}/upload` }, 'Upload exports'),
      start,
      h('button', { type: 'button', onclick: () => settingsDialog(a, refresh) }, 'Settings'),
      h('button', { type: 'button', class: 'danger', onclick: () => confirmDelete(a, refresh) }, 'Delete')));
}

export async function page(ctx) {
  await serverInfo();
  const list = h('div', { class: 'accounts' });
  const refresh = async () => {
    const data = await get('/accounts?limit=200', { signal: ctx.signal });
    const items = data.items;
    if (!items.length) {
      mount(list, h('div', { class: 'empty' },
        h('h2', null, 'No accounts yet'),
        h('p', null, 'Add an Instagram handle above. Without an Apify token on the server, analyse it from Apify export files: add the account, then "Upload exports".')));
      return;
    }
    mount(list, h('div', { class: 'scroll' }, h('table', { class: 'data accounts-table' },
      h('thead', null, h('tr', null, ['Account', 'Last analysis', 'Audience', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, items.map((a) => row(a, ctx, refresh))))));
    // Keep running analyses' states fresh.
    if (items.some((a) => a.latest_analysis && ['queued', 'running'].includes(a.latest_analysis.status))) {
      setTimeout(() => { if (!ctx.signal.aborted) refresh().catch(() => {}); }, 3000);
    }
  };
  await refresh();

  const error = h('p', { class: 'field-error', id: 'handle-error', role: 'alert', hidden: true });
  const handle = h('input', { id: 'new-handle', name: 'handle', autocomplete: 'off', placeholder: '@brand, brand or https://www.instagram.com/brand/', 'aria-describedby': 'handle-error', required: true });
  const add = h('form', { class: 'add-account' },
    h('label', { for: 'new-handle' }, 'Instagram account'), handle,
    h('button', { type: 'submit', class: 'primary' }, 'Add account'), error);
  add.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    handle.removeAttribute('aria-invalid');
    try {
      const created = await post('/accounts', { handle: handle.value });
      handle.value = '';
      announce(`@${created.handle} added.`);
      await refresh();
    } catch (err) {
      error.textContent = explain(err);
      error.hidden = false;
      handle.setAttribute('aria-invalid', 'true');
      handle.focus();
    }
  });
  return h('div', null, h('h1', null, 'Your accounts'), add, list,
    h('p', { class: 'meta' }, 'Classifier for new analyses: ', classifierChoice(ctx.session).note));
}
