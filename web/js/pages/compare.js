// Accounts side by side: each headline share with its interval, each difference from the
// first account with its own interval, and how much the audiences overlap.

import { explain, get } from '../api.js';
import { announce, h, mount, name } from '../dom.js';
import { BRACKETS, ci, count, pct, points } from '../format.js';

function cell(summary, dim, cls) {
  const list = dim === 'gender' ? summary.gender_raw : dim === 'age_bracket' ? summary.age_raw : summary.profile_types_raw;
  const s = (list || []).find((x) => x.class === cls);
  return s ? `${pct(s.share)} ${ci(s.ci95)}` : 'no estimate';
}

function difference(summary, dim, cls) {
  const d = (summary.differences_from_first || []).find((x) => x.dimension === dim && x.class === cls);
  if (!d) return null;
  return h('span', { class: d.significant ? 'diff significant' : 'diff' },
    `${points(d.delta)} (${points(d.ci95[0])} to ${points(d.ci95[1])})${d.significant ? ' *' : ''}`);
}

function table(compared) {
  const rows = [['gender', 'female', 'Women'], ['gender', 'male', 'Men'], ...BRACKETS.map((b) => ['age_bracket', b, `Age ${b}`]),
    ['profile_type', 'person', 'Person pictures'], ['profile_type', 'no_person', 'No person'], ['profile_type', 'default_avatar', 'Default avatar']];
  return h('div', { class: 'scroll' }, h('table', { class: 'data compare' },
    h('caption', null, 'Raw shares with 95 % intervals; under each, the difference from the first account with its 95 % interval (* the interval leaves out zero).'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Share'), compared.map((c) => h('th', { scope: 'col' }, '@', name(c.handle), h('br'), h('span', { class: 'muted' }, `n = ${count(c.unique_commenters)}`))))),
    h('tbody', null, rows.map(([dim, cls, label]) => h('tr', null, h('th', { scope: 'row' }, label),
      compared.map((c) => h('td', null, cell(c, dim, cls), difference(c, dim, cls) ? [h('br'), difference(c, dim, cls)] : null)))))));
}

function overlap(pairs, handles) {
  return h('div', { class: 'scroll' }, h('table', { class: 'data' },
    h('caption', null, 'Commenters in common (over everything stored for each account).'),
    h('thead', null, h('tr', null, ['Accounts', 'In common', 'Share of the smaller audience', 'Jaccard'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, pairs.map((p) => h('tr', null,
      h('th', { scope: 'row' }, '@', name(handles[p.account_a]), ' & @', name(handles[p.account_b])),
      h('td', { class: 'num' }, `${count(p.shared)} of ${count(p.commenters_a)} and ${count(p.commenters_b)}`),
      h('td', { class: 'num' }, pct(p.share_of_smaller)),
      h('td', { class: 'num' }, p.jaccard.toFixed(3)))))));
}

export async function page(ctx) {
  const accounts = (await get('/accounts?limit=200', { signal: ctx.signal })).items;
  const withResult = accounts.filter((a) => a.headline);
  const chosen = new Set((ctx.query.get('ids') || '').split(',').filter(Boolean));
  const result = h('div', { 'aria-live': 'polite' });
  const boxes = withResult.map((a) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: String(a.id), checked: chosen.has(String(a.id)) }), ' @', name(a.handle)));
  const run = async () => {
    const ids = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    if (ids.length < 2) {
      mount(result, h('p', { class: 'muted' }, 'Choose at least two accounts.'));
      return;
    }
    try {
      const [compared, pairs] = await Promise.all([
        get(`/audience/compare?accounts=${ids.join(',')}`),
        get(`/audience/overlap-matrix?accounts=${ids.join(',')}`),
      ]);
      const handles = Object.fromEntries(accounts.map((a) => [a.id, a.handle]));
      mount(result, h('h2', null, 'Side by side'), table(compared), h('h2', null, 'Overlap'), overlap(pairs, handles));
    } catch (e) {
      announce(explain(e), 'error');
    }
  };
  const form = h('form', { class: 'compare-form' }, h('fieldset', null, h('legend', null, 'Accounts to compare (2 to 10)'), boxes),
    h('button', { type: 'submit', class: 'primary' }, 'Compare'));
  form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
  if (chosen.size >= 2) run();
  return h('div', null, h('h1', null, 'Compare accounts'),
    withResult.length < 2 ? h('div', { class: 'empty' }, h('p', null, 'Comparing needs two accounts with a completed analysis.')) : form,
    result);
}
