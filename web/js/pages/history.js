// An account's audience over time: each share with its interval band, and a marker where a
// change from the analysis before is statistically significant (Newcombe's interval for a
// difference of two proportions leaves out zero).

import { get } from '../api.js';
import { h, name } from '../dom.js';
import { BRACKETS, ci, date, pct, points } from '../format.js';
import { trend } from '../charts.js';
import { tabs } from './account.js';

function series(history, dimension, cls, pick) {
  return history.map((p, i) => {
    const change = (p.changes || []).find((c) => c.dimension === dimension && c.class === cls);
    const v = pick(p);
    return v ? { label: date(p.generated_at), share: v.share, ci95: v.ci95, significant: Boolean(change && change.significant), change, index: i } : null;
  }).filter(Boolean);
}

export async function page(ctx) {
  const id = ctx.params[0];
  const [history, account] = await Promise.all([
    get(`/accounts/${id}/audience/history`, { signal: ctx.signal }),
    get(`/accounts/${id}`, { signal: ctx.signal }),
  ]);
  const head = [h('h1', null, 'History of @', name(account.handle)), tabs(id, '/history')];
  if (!history.length) {
    return h('div', null, ...head, h('div', { class: 'empty' }, h('h2', null, 'No analyses yet'), h('p', null, 'Each completed analysis adds a point here.')));
  }
  const charts = [];
  const raw = (p, dim, cls) => {
    const b = dim === 'gender' ? p.gender_raw : dim === 'age_bracket' ? p.age_raw : p.profile_types_raw;
    return b ? b.find((x) => x.class === cls) : null;
  };
  const panels = [
    ['gender', 'female', 'Women among commenters given a gender'],
    ...BRACKETS.map((b) => ['age_bracket', b, `Age ${b}`]),
    ['profile_type', 'person', 'Pictures showing a person'],
  ];
  for (const [dim, cls, title] of panels) {
    const pts = series(history, dim, cls, (p) => raw(p, dim, cls));
    if (!pts.length) continue;
    const changes = pts.filter((p) => p.change);
    charts.push(h('section', { class: 'panel' },
      h('h3', null, title),
      trend(pts, { title }),
      changes.length ? h('ul', { class: 'changes' }, changes.map((p) => h('li', { class: p.significant ? 'significant' : '' },
        `${p.label}: ${points(p.change.delta)}, 95 % CI ${points(p.change.ci95[0])} to ${points(p.change.ci95[1])}`,
        p.significant ? ' — significant' : ' — within the noise'))) : null));
  }
  return h('div', null, ...head,
    h('p', null, `${history.length} analyses. Raw shares with 95 % Wilson intervals; a large dot marks a change from the analysis before whose 95 % interval (Newcombe's hybrid score method for a difference of two proportions) leaves out zero.`),
    h('div', { class: 'grid-2' }, charts),
    h('p', null, h('a', { class: 'api-link', href: `/api/v1/accounts/${id}/audience/history`, target: '_blank', rel: 'noopener' }, `GET /api/v1/accounts/${id}/audience/history`)));
}

export { ci, pct };
