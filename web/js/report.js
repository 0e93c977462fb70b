// The audience report of one snapshot: who the shares describe (the coverage funnel), then
// every share with its sample size and 95 % interval, raw or corrected for the classifier's
// measured errors, and what could not be estimated, said in words.

import { bars, funnel, legend, pyramid } from './charts.js';
import { externalLink, h, name, uid } from './dom.js';
import { BRACKETS, TYPE_LABELS, ci, count, date, dateTime, pct, plural, usd } from './format.js';

function panel(title, apiPath, ...body) {
  const id = uid('panel');
  return h('section', { class: 'panel', 'aria-labelledby': id },
    h('header', { class: 'panel-head' },
      h('h3', { id }, title),
      apiPath ? h('a', { class: 'api-link', href: `/api/v1${apiPath}`, target: '_blank', rel: 'noopener' }, `GET /api/v1${apiPath}`) : null),
    ...body);
}

function noEstimate(text) {
  return h('p', { class: 'no-estimate' }, text || 'No estimate.');
}

function sampleLine(sample) {
  const posts = sample.posts_scope === 'input'
    ? `${plural(sample.posts_covered, 'post')}: every post of the imported files`
    : sample.posts_limit
      ? `${plural(sample.posts_covered, 'post')}: the account's newest ${sample.posts_limit}`
      : plural(sample.posts_covered, 'post');
  return posts;
}

function facts(snap) {
  const s = snap.sample;
  const a = snap.audience;
  const rows = [
    ['Posts', `${sampleLine(s)}${s.first_post_at ? `, posted ${date(s.first_post_at)} to ${date(s.last_post_at)}` : ''}`],
    ['Comments', `${count(s.comments)} analysed${s.first_comment_at ? `, written ${date(s.first_comment_at)} to ${date(s.last_comment_at)}` : ''}`],
    ['Unique commenters', count(s.unique_commenters)],
    ['Model', a.classified > 0 ? snap.model : 'none (no picture was classified)'],
    ['Calibration', calibrationText(a)],
    ['Classifier', snap.classifier],
    ['Cost', usd(snap.cost.total_usd)],
    ['Analysed', `${dateTime(snap.generated_at)} (analysis ${snap.analysis_id})`],
  ];
  return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function calibrationText(a) {
  const corrected = [a.gender.corrected ? 'gender' : null, a.age_brackets.corrected ? 'age brackets' : null].filter(Boolean);
  if (!a.calibration || corrected.length === 0) return 'none applied: shares are raw counts';
  return `${corrected.join(' and ')} corrected with ${a.calibration.model} (${a.calibration.dataset})`;
}

function funnelPanel(snap, apiPath) {
  const f = snap.sample.funnel;
  if (!f) {
    return panel('Who the shares describe', apiPath, h('p', null,
      `${count(snap.sample.comments)} comments by ${count(snap.sample.unique_commenters)} unique commenters (this analysis predates the coverage funnel).`));
  }
  const c = f.comments;
  const p = f.commenters;
  const m = p.not_classified;
  const aside = c.set_aside;
  const asideParts = [
    [aside.owner, `by @${snap.handle} itself or a co-author`],
    [aside.foreign, "on other accounts' posts"],
    [aside.duplicate, 'repeated'],
    [aside.rejected, 'unreadable'],
    [aside.suppressed, 'by people erased at their request'],
    [aside.outside_posts, 'on posts outside the covered ones'],
  ].filter(([n]) => n > 0);
  const missing = [
    [m.no_picture, 'no picture link'],
    [m.private, 'private, not downloaded'],
    [m.expired, 'link expired'],
    [m.unreadable, 'not a picture'],
    [m.failed, 'download failed'],
    [m.pending, 'not downloaded yet'],
    [m.unclassified, 'downloaded, not classified'],
  ].filter(([n]) => n > 0);
  const notes = [];
  if (m.expired > 0) {
    notes.push(snap.sample.posts_scope === 'input'
      ? `${plural(m.expired, 'picture link')} had expired: Instagram's picture links last only days, and this export is older. Scrape the account again, or export it anew and upload it at once.`
      : `${plural(m.expired, 'picture link')} expired before they were downloaded: run the analysis again to fetch fresh ones.`);
  }
  if (c.posts_without_owner > 0) notes.push(`The input does not name the owner of ${plural(c.posts_without_owner, 'post')}: taken as this account's.`);
  if (c.posts_foreign > 0 || c.profiles_foreign > 0) notes.push(`Set aside as other accounts' data: ${plural(c.posts_foreign, 'post')}, ${plural(c.profiles_foreign, 'profile')}.`);
  return panel('Who the shares describe', apiPath,
    funnel([
      { label: 'comments analysed', value: c.analysed },
      { label: 'unique commenters', value: p.unique },
      { label: 'with a picture link', value: p.with_picture },
      { label: 'picture available', value: p.picture_available },
      { label: 'classified', value: p.classified },
      { label: 'typed person', value: p.person },
      { label: 'gender given', value: p.gender_given },
      { label: 'age given', value: p.age_given },
    ]),
    h('ul', { class: 'funnel-notes' },
      h('li', null, `${count(c.in_input)} comments in the input${c.stored_earlier ? ` and ${count(c.stored_earlier)} stored earlier on these posts` : ''}; `,
        asideParts.length ? `${count(aside.owner + aside.foreign + aside.duplicate + aside.rejected + aside.suppressed + aside.outside_posts)} set aside (${asideParts.map(([n, t]) => `${count(n)} ${t}`).join(', ')})` : 'none set aside',
        `; ${count(c.analysed)} analysed.`),
      missing.length ? h('li', null, `Not classified: ${missing.map(([n, t]) => `${count(n)} ${t}`).join(', ')}.`) : null,
      p.recognised_from_link > 0 ? h('li', null, `${plural(p.recognised_from_link, 'default avatar')} recognised from the link alone.`) : null,
      notes.map((n) => h('li', { class: 'warn' }, n))));
}

function typesPanel(a, apiPath) {
  if (!a.profile_types.length) return panel('Profile types', apiPath, noEstimate(a.profile_types_no_estimate));
  return panel('Profile types', apiPath,
    h('p', { class: 'meta' }, `n = ${count(a.classified)} classified pictures. No person: a logo, a pet, scenery, text or a drawing.`),
    bars(a.profile_types.map((t) => ({ label: TYPE_LABELS[t.class] || t.class, share: t.share, ci95: t.ci95, count: t.count, kind: t.class })),
      { title: 'Profile types', labelWidth: 150 }));
}

// A breakdown with a raw ↔ corrected switch (corrected first when there is one).
function breakdownPanel(title, b, apiPath, kindOf, extra) {
  if (!b.raw.length) return panel(title, apiPath, noEstimate(b.no_estimate), extra);
  const corrected = b.corrected && b.corrected.length ? b.corrected : null;
  const chart = h('div', { class: 'chart-holder' });
  const raw = () => b.raw.map((r) => ({ label: r.class, share: r.share, ci95: r.ci95, count: r.count, kind: kindOf(r.class) }));
  const fixed = () => corrected.map((r) => ({ label: r.class, share: r.share, ci95: r.ci95, kind: kindOf(r.class) }));
  const draw = (which) => {
    chart.replaceChildren(bars(which === 'corrected' ? fixed() : raw(), { title: `${title} (${which})` }));
  };
  const name_ = uid('view');
  const toggle = corrected
    ? h('fieldset', { class: 'toggle' }, h('legend', null, 'Shares'),
      ...['corrected', 'raw'].map((which, i) => h('label', null,
        h('input', { type: 'radio', name: name_, value: which, checked: i === 0, onchange: () => draw(which) }),
        which === 'corrected' ? ' corrected for classifier errors' : ' raw counts')))
    : h('p', { class: 'meta' }, 'Raw counts: no calibration for this breakdown.');
  draw(corrected ? 'corrected' : 'raw');
  return panel(title, apiPath,
    h('p', { class: 'meta' }, `n = ${count(b.n)} (${pct(b.coverage, 0)} of classified pictures)`),
    toggle, chart, extra);
}

function accountTypes(snap, apiPath) {
  const t = snap.account_types;
  const rows = ['private', 'verified', 'business'].map((k) => [k, t[k]]);
  return panel('Account types', apiPath,
    h('table', { class: 'data' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Share'), h('th', { scope: 'col' }, '95 % interval'), h('th', { scope: 'col' }, 'Known for'))),
      h('tbody', null, rows.map(([k, f]) => h('tr', null,
        h('th', { scope: 'row' }, k),
        f.n ? [h('td', null, pct(f.share)), h('td', null, ci(f.ci95)), h('td', null, `${count(f.n)} (${pct(f.coverage, 0)})`)]
          : h('td', { colspan: '3' }, 'unknown: no source gave it'))))));
}

function perPost(snap, apiPath) {
  if (!snap.per_post.length) return panel('Per post', apiPath, noEstimate('No posts.'));
  return panel('Per post', apiPath,
    h('p', { class: 'meta' }, 'Raw counts; gender and age are withheld for posts with fewer than 5 classified people.'),
    h('div', { class: 'scroll' }, h('table', { class: 'data' },
      h('thead', null, h('tr', null, ['Post', 'Posted', 'Comments', 'Commenters', 'Classified', 'Women', 'Men', 'Largest age bracket'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, snap.per_post.map((p) => {
        const brackets = p.age_brackets ? Object.entries(p.age_brackets).sort((a, b) => b[1] - a[1]) : [];
        return h('tr', null,
          h('td', null, externalLink(p.url, p.url ? p.url.replace('https://www.instagram.com', '') : p.ig_post_id)),
          h('td', null, date(p.posted_at)),
          h('td', { class: 'num' }, count(p.comments)),
          h('td', { class: 'num' }, count(p.unique_commenters)),
          h('td', { class: 'num' }, count(p.classified)),
          h('td', { class: 'num' }, p.female === null ? 'withheld' : count(p.female)),
          h('td', { class: 'num' }, p.male === null ? 'withheld' : count(p.male)),
          h('td', null, brackets.length ? `${brackets[0][0]} (${count(brackets[0][1])})` : p.age_brackets ? '–' : 'withheld'));
      })))));
}

function pyramidPanel(snap, apiPath) {
  const table = snap.age_gender;
  const b = snap.audience.age_brackets;
  if (!table) {
    return panel('Age and gender', apiPath, noEstimate(b.no_estimate || 'Withheld: fewer than 5 people were given an age.'));
  }
  return panel('Age and gender', apiPath,
    h('p', { class: 'meta' }, `${count(table.n)} people given an age; raw shares of them with 95 % intervals (the joint table is not corrected).`),
    legend([['female', 'women'], ['male', 'men'], ['unknown', 'gender not given']]),
    pyramid(table),
    h('details', null, h('summary', null, 'The numbers as a table'),
      h('table', { class: 'data' },
        h('thead', null, h('tr', null, ['Age', 'Women', 'Men', 'Gender not given'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, table.rows.map((r) => h('tr', null, h('th', { scope: 'row' }, r.bracket),
          ...[r.female, r.male, r.unknown].map((c) => h('td', null, `${count(c.count)} · ${pct(c.share)} ${ci(c.ci95)}`))))))));
}

// The whole report. `paths` name the API routes each panel comes from.
export function report(snap, { paths = {}, downloads = null } = {}) {
  const a = snap.audience;
  const notes = [...(a.notes || [])];
  if (snap.cost.gemini) for (const n of snap.cost.gemini.notes || []) notes.push(n);
  return h('article', { class: 'report' },
    h('header', { class: 'report-head' },
      h('h2', null, 'Audience of @', name(snap.handle)),
      facts(snap),
      downloads),
    funnelPanel(snap, paths.snapshot),
    typesPanel(a, paths.snapshot),
    breakdownPanel('Gender', a.gender, paths.snapshot, (c) => c),
    pyramidPanel(snap, paths.snapshot),
    breakdownPanel('Age brackets', a.age_brackets, paths.snapshot, () => 'age'),
    accountTypes(snap, paths.snapshot),
    perPost(snap, paths.snapshot),
    notes.length ? panel('Notes', null, h('ul', null, notes.map((n) => h('li', null, n)))) : null);
}

export { BRACKETS };
