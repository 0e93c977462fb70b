// One account: its latest analysis with live progress (cancel, retry with the reason it
// failed), and its audience report; the owner's commenter drill-down and downloads.

import { del, explain, get, post } from '../api.js';
import { announce, h, mount, name, uid } from '../dom.js';
import { count, plural, stage, usd } from '../format.js';
import { report } from '../report.js';
import { serverInfo } from '../app.js';

// The classifier options this server offers, and a note on what is missing.
export function classifierChoice(session) {
  const list = (session.server && session.server.classifiers) || [{ name: 'local', available: true }];
  const id = uid('classifier');
  const select = h('select', { id, name: 'classifier' }, list.map((c) =>
    h('option', { value: c.name, disabled: !c.available }, c.available ? c.name : `${c.name} (unavailable: ${c.reason})`)));
  const missing = list.filter((c) => !c.available);
  const note = missing.length ? `local; ${missing.map((c) => c.name).join(' and ')} unavailable: ${missing[0].reason}` : 'local, gemini or cascade';
  return { id, select, note };
}

// Asks which classifier, then starts a scrape-and-analyse of the account.
export async function startAnalysis(account, ctx, onStarted) {
  await serverInfo();
  const choice = classifierChoice(ctx.session);
  const title = uid('start');
  const dialog = h('dialog', { 'aria-labelledby': title },
    h('form', { method: 'dialog' },
      h('h2', { id: title }, 'Analyse @', name(account.handle)),
      h('p', null, `Scrapes the newest ${account.max_posts} posts and up to ${account.max_comments_per_post} comments per post through Apify, then classifies the commenters' pictures.`),
      h('div', { class: 'field' }, h('label', { for: choice.id }, 'Classifier'), choice.select),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', value: 'start' }, 'Start'),
        h('button', { type: 'submit', value: 'cancel' }, 'Cancel'))));
  dialog.addEventListener('close', async () => {
    dialog.remove();
    if (dialog.returnValue !== 'start') return;
    try {
      await post(`/accounts/${account.id}/analyses`, { classifier: choice.select.value });
      announce(`Analysis of @${account.handle} started.`);
      onStarted();
    } catch (e) {
      announce(explain(e), 'error');
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}

function progressView(a) {
  const p = a.progress || {};
  const f = p.funnel;
  const lines = [];
  if (a.stage === 'scrape') lines.push(`${plural(p.posts_found || 0, 'post')} found, ${plural(p.comments_read || 0, 'comment')} read`);
  if (a.stage === 'fetch_pictures') {
    const tried = (p.pictures_fetched || 0) + (p.pictures_expired || 0) + (p.pictures_rejected || 0) + (p.pictures_failed || 0);
    lines.push(`${plural(tried, 'picture download')} tried so far`);
  }
  if (a.stage === 'classify') lines.push(`${plural(p.pictures_classified || 0, 'picture')} classified so far`);
  if (f) lines.push(`${count(f.comments.analysed)} comments analysed; ${count(f.commenters.unique)} commenters, ${count(f.commenters.with_picture)} with a picture link, ${count(f.commenters.picture_available)} available, ${count(f.commenters.classified)} classified`);
  return lines;
}

// The latest analysis of the account: its state, live while it runs.
function analysisBar(latest, accountId, ctx, onChange) {
  const box = h('section', { class: 'analysis-bar', 'aria-live': 'polite', 'aria-label': 'Latest analysis' });
  let timer = null;
  const draw = (a) => {
    if (!a) {
      mount(box, h('p', null, 'No analysis yet.'));
      return;
    }
    const running = a.status === 'queued' || a.status === 'running';
    const steps = ['scrape', 'fetch_pictures', 'classify', 'aggregate', 'done'];
    const at = steps.indexOf(a.stage);
    mount(box,
      h('p', null, h('strong', null, `Analysis ${a.id}: `), h('span', { class: `badge ${a.status}` }, a.status),
        running ? ` ${stage(a.stage)}` : '', ` · classifier ${a.classifier} · cost ${usd(a.cost_usd)}`),
      running ? h('ol', { class: 'stages' }, steps.slice(0, 4).map((st, i) =>
        h('li', { class: i < at ? 'done' : i === at ? 'now' : '' , 'aria-current': i === at ? 'step' : null }, stage(st)))) : null,
      progressView(a).map((l) => h('p', { class: 'meta' }, l)),
      a.status === 'failed' ? h('p', { class: 'notice error' }, `It failed: ${a.error || 'no reason recorded'}`) : null,
      h('div', { class: 'actions' },
        running ? h('button', { type: 'button', onclick: async () => {
          try { draw(await post(`/analyses/${a.id}/cancel`)); onChange(); } catch (e) { announce(explain(e), 'error'); }
        } }, 'Cancel the analysis') : null,
        a.status === 'failed' ? h('button', { type: 'button', class: 'primary', onclick: async () => {
          try { draw(await post(`/analyses/${a.id}/retry`)); poll(a.id); } catch (e) { announce(explain(e), 'error'); }
        } }, 'Retry from the failed stage') : null));
    if (running) poll(a.id);
  };
  const poll = (id) => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (ctx.signal.aborted || !document.body.contains(box)) return;
      try {
        const a = await get(`/analyses/${id}`);
        const was = box.dataset.status;
        box.dataset.status = a.status;
        draw(a);
        if (was && was !== a.status && a.status === 'succeeded') onChange();
      } catch (e) {
        if (e.status !== 401) announce(explain(e), 'error');
        poll(id);
      }
    }, 1500);
  };
  if (latest) box.dataset.status = latest.status;
  draw(latest);
  return box;
}

// The owner's drill-down: commenters with their classification, pseudonymised until asked.
function commenters(accountId) {
  const holder = h('div');
  const table = h('tbody');
  let cursor = null;
  let showNames = false;
  const rows = [];
  const more = h('button', { type: 'button' }, 'Load more');
  const toggle = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Show handles');
  const render = () => mount(table, rows.map((r) => h('tr', null,
    h('td', null, showNames ? name(r.username) : `commenter ${r.id}`),
    h('td', { class: 'num' }, count(r.comments)),
    h('td', null, r.profile_type || r.picture_status || 'no picture'),
    h('td', null, r.gender || '–'),
    h('td', { class: 'num' }, r.age_estimate === null ? '–' : Math.round(r.age_estimate)),
    h('td', null, r.source || '–'))));
  const load = async () => {
    more.disabled = true;
    try {
      const page = await get(`/accounts/${accountId}/commenters?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      rows.push(...page.items);
      cursor = page.next_cursor;
      render();
      more.hidden = !cursor;
    } catch (e) {
      announce(explain(e), 'error');
    } finally {
      more.disabled = false;
    }
  };
  toggle.addEventListener('click', () => {
    showNames = !showNames;
    toggle.setAttribute('aria-pressed', String(showNames));
    toggle.textContent = showNames ? 'Hide handles' : 'Show handles';
    render();
  });
  const details = h('details', { class: 'panel' },
    h('summary', null, h('h3', { class: 'inline' }, 'Commenters (only you see this)')),
    h('p', { class: 'meta' }, 'Each commenter with the classification of their picture. Handles are hidden until you ask; exports are pseudonymised unless you ask for handles.'),
    toggle,
    h('div', { class: 'scroll' }, h('table', { class: 'data' },
      h('thead', null, h('tr', null, ['Commenter', 'Comments', 'Picture', 'Gender', 'Age', 'Source'].map((c) => h('th', { scope: 'col' }, c)))),
      table)),
    more,
    h('p', null, h('a', { href: `/api/v1/accounts/${accountId}/commenters/export`, download: '' }, 'Download all as CSV (pseudonymised)')));
  details.addEventListener('toggle', () => { if (details.open && !rows.length) load(); }, { once: false });
  more.addEventListener('click', load);
  holder.append(details);
  return holder;
}

export function tabs(accountId, here) {
  const items = [['', 'Report'], ['/history', 'History'], ['/upload', 'Upload exports']];
  return h('nav', { class: 'tabs', 'aria-label': 'Account' }, h('ul', null, items.map(([suffix, label]) =>
    h('li', null, h('a', { href: `#/accounts/${accountId}${suffix}`, 'aria-current': here === suffix ? 'page' : null }, label)))));
}

function shareLinks(accountId) {
  const list = h('ul', { class: 'links' });
  const result = h('div', { role: 'status' });
  const days = h('input', { id: 'share-days', type: 'number', min: '1', max: '365', value: '30' });
  const refresh = async () => {
    const links = await get(`/accounts/${accountId}/share-links`);
    mount(list, links.length ? links.map((l) => {
      const live = !l.revoked_at && new Date(l.expires_at) > new Date();
      return h('li', null, `${l.token_prefix}… · created ${l.created_at.slice(0, 10)} · `,
        live ? `expires ${l.expires_at.slice(0, 10)} ` : (l.revoked_at ? 'revoked' : 'expired'),
        live ? h('button', { type: 'button', class: 'danger small', onclick: async () => {
          try { await del(`/share-links/${l.id}`); await refresh(); } catch (e) { announce(explain(e), 'error'); }
        } }, 'Revoke') : null);
    }) : h('li', { class: 'muted' }, 'No links yet.'));
  };
  const create = h('button', { type: 'button', onclick: async () => {
    try {
      const made = await post(`/accounts/${accountId}/share-links`, { days: Number(days.value) });
      const url = `${location.origin}${made.path}`;
      mount(result, h('p', { class: 'notice' }, 'Copy this link now (it is shown once): ', h('code', { class: 'secret' }, url)));
      await refresh();
    } catch (e) { announce(explain(e), 'error'); }
  } }, 'Create a read-only link');
  const details = h('details', { class: 'panel' },
    h('summary', null, h('h3', { class: 'inline' }, 'Share this report')),
    h('p', { class: 'meta' }, 'A link anyone can open without an account: the latest report of this account only, no commenters. Unguessable, expiring and revocable.'),
    h('label', { for: 'share-days' }, 'Valid for (days) '), days, ' ', create, result, list);
  details.addEventListener('toggle', () => { if (details.open) refresh().catch((e) => announce(explain(e), 'error')); });
  return details;
}

export async function page(ctx) {
  const id = ctx.params[0];
  // Two calls: the account (with its latest analysis and whether it has an audience), then
  // the audience itself when there is one.
  const account = await get(`/accounts/${id}`, { signal: ctx.signal });
  const snapshot = account.headline ? await get(`/accounts/${id}/audience`, { signal: ctx.signal }) : null;
  const latest = account.latest_analysis;
  const refresh = () => ctx.go(`/accounts/${id}`);
  const handle = account.handle;
  const bar = analysisBar(latest, id, ctx, refresh);
  if (!snapshot) {
    return h('div', null,
      h('h1', null, '@', name(handle)), tabs(id, ''), bar,
      h('div', { class: 'empty' },
        h('h2', null, 'No audience yet'),
        h('p', null, 'When an analysis finishes, its report appears here.'),
        h('p', null, h('a', { class: 'button primary', href: `#/accounts/${id}/upload` }, 'Upload Apify exports'), ' ',
          h('button', { type: 'button', onclick: () => startAnalysis(account, ctx, refresh) }, 'Scrape and analyse'))));
  }
  const downloads = h('p', { class: 'downloads' }, 'Download: ',
    h('a', { href: `/api/v1/analyses/${snapshot.analysis_id}/export?format=csv`, download: '' }, 'CSV'), ' · ',
    h('a', { href: `/api/v1/analyses/${snapshot.analysis_id}/export?format=json`, download: '' }, 'JSON'), ' · ',
    h('button', { type: 'button', class: 'link', onclick: () => window.print() }, 'Print or save as PDF'));
  return h('div', null,
    h('h1', { class: 'visually-hidden' }, `@${handle}`),
    tabs(id, ''),
    bar,
    report(snapshot, { paths: { snapshot: `/accounts/${id}/audience` }, downloads }),
    commenters(id),
    shareLinks(id));
}
