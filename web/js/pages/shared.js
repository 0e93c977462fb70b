// A report opened from a share link: read-only, no account needed, no commenters.

import { get } from '../api.js';
import { h } from '../dom.js';
import { date } from '../format.js';
import { report } from '../report.js';

export async function page(ctx) {
  const token = ctx.params[0];
  let data;
  try {
    data = await get(`/shared/${token}`, { signal: ctx.signal });
  } catch (e) {
    if (e.status === 404) {
      return h('div', { class: 'card narrow' }, h('h1', null, 'This link does not work'), h('p', null, e.message));
    }
    throw e;
  }
  return h('div', null,
    h('p', { class: 'notice' }, `A read-only report shared with you; the link works until ${date(data.expires_at)}.`),
    report(data.snapshot, { downloads: h('p', { class: 'downloads' }, h('button', { type: 'button', class: 'link', onclick: () => window.print() }, 'Print or save as PDF')) }));
}
