// Uploading Apify exports from the browser (the way in for everyone without an Apify token):
// drop or pick files, see each one's size, upload with progress, then what each file held,
// what was set aside and why, a downloadable report of the rejected items, and the analysis
// running without scraping.

import { explain, get, upload } from '../api.js';
import { announce, h, mount, name, uid } from '../dom.js';
import { bytes, count, plural } from '../format.js';
import { serverInfo } from '../app.js';
import { classifierChoice, tabs } from './account.js';

const ACCEPT = '.json,.jsonl,.ndjson,.csv,application/json,text/csv';

function fileSummary(f) {
  const i = f.intake || {};
  const lines = [
    `${count(f.items)} items (${f.format === 'json_array' ? 'JSON array' : f.format === 'json_lines' ? 'JSON lines' : 'CSV'})`,
    `posts: ${count(f.posts_new)} new, ${count(f.posts_seen_before)} already stored`,
    `comments: ${count(f.comments_new)} new, ${count(f.comments_seen_before)} already stored`,
    `commenters: ${count(f.commenters_new)} new, ${count(f.commenters_seen_before)} already known`,
  ];
  const aside = [];
  if (i.posts_foreign) aside.push(`${plural(i.posts_foreign, 'post')} of other accounts (${(i.foreign_owners || []).map((o) => `@${o}`).join(', ')}) with ${plural(i.comments_foreign, 'comment')}`);
  if (i.comments_duplicate) aside.push(`${plural(i.comments_duplicate, 'repeated comment')}`);
  if (i.profiles_foreign) aside.push(`${plural(i.profiles_foreign, 'profile')} of accounts that do not comment here`);
  if (f.suppressed) aside.push(`${count(f.suppressed)} items about people erased at their request`);
  return { lines, aside, warn: i.posts_without_owner ? `${plural(i.posts_without_owner, 'post')} whose owner the file does not name: taken as this account's` : null };
}

function rejectReport(files) {
  const lines = files.flatMap((f) => (f.rejected || []).map((r) => JSON.stringify(r)));
  if (!lines.length) return null;
  const blob = new Blob([`${lines.join('\n')}\n`], { type: 'application/x-ndjson' });
  return h('a', { class: 'button', href: URL.createObjectURL(blob), download: 'rejected-items.jsonl' }, `Download the ${plural(lines.length, 'rejected item')} (JSON lines)`);
}

export async function page(ctx) {
  const id = ctx.params[0];
  const [account, server] = await Promise.all([get(`/accounts/${id}`, { signal: ctx.signal }), serverInfo()]);
  const maxBytes = server.max_upload_file_bytes;
  const chosen = [];
  const list = h('ul', { class: 'files' });
  const input = h('input', { id: 'upload-files', type: 'file', multiple: true, accept: ACCEPT, class: 'visually-hidden', 'aria-describedby': 'drop-help' });
  const choice = classifierChoice(ctx.session);
  const send = h('button', { type: 'button', class: 'primary', disabled: true }, 'Upload and analyse');
  const progress = h('progress', { max: '100', value: '0', hidden: true, 'aria-label': 'Upload progress' });
  const progressText = h('span', { class: 'meta', role: 'status' });
  const result = h('div', { class: 'upload-result' });
  const drop = h('div', { class: 'dropzone' },
    h('p', null, h('strong', null, 'Drop Apify export files here'), ' or ', h('label', { for: 'upload-files', class: 'link' }, 'choose files')),
    h('p', { id: 'drop-help', class: 'meta' }, `JSON, JSON lines or CSV from the post, comment, reel, profile, mention or hashtag scrapers; up to ${bytes(maxBytes)} each, ${server.max_upload_files} at a time.`),
    input);
  const draw = () => {
    mount(list, chosen.map((f, i) => h('li', null, name(f.name), ` · ${bytes(f.size)}`,
      f.size > maxBytes ? h('strong', { class: 'field-error' }, ' too large') : null,
      h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${f.name}`, onclick: () => { chosen.splice(i, 1); draw(); } }, 'remove'))));
    send.disabled = !chosen.length || chosen.some((f) => f.size > maxBytes) || chosen.length > server.max_upload_files;
  };
  const add = (files) => {
    for (const f of files) chosen.push(f);
    draw();
  };
  input.addEventListener('change', () => add(input.files));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); add(e.dataTransfer.files); });
  send.addEventListener('click', async () => {
    send.disabled = true;
    progress.hidden = false;
    mount(result);
    try {
      const done = await upload(`/accounts/${id}/imports?classifier=${encodeURIComponent(choice.select.value)}`, chosen, (sent, total) => {
        progress.value = Math.round((sent / total) * 100);
        progressText.textContent = sent < total ? `${bytes(sent)} of ${bytes(total)} sent` : 'Importing…';
      });
      progressText.textContent = 'Imported.';
      chosen.length = 0;
      draw();
      mount(result,
        h('h2', null, 'What the files held'),
        done.files.map((f) => {
          const sum = fileSummary(f);
          return h('section', { class: 'panel' },
            h('h3', null, name(f.name)),
            h('ul', null, sum.lines.map((l) => h('li', null, l))),
            sum.aside.length ? h('p', null, `Set aside: ${sum.aside.join('; ')}.`) : null,
            sum.warn ? h('p', { class: 'warn' }, sum.warn) : null,
            h('p', null, `${plural((f.rejected || []).length, 'item')} rejected`),
            (f.rejected || []).slice(0, 5).map((r) => h('p', { class: 'meta' }, `item ${r.position}: ${r.reason}`)));
        }),
        rejectReport(done.files),
        h('p', { class: 'notice' }, `Analysis ${done.analysis.id} is running without scraping. `,
          h('a', { href: `#/accounts/${id}` }, 'Follow it on the report page')));
      announce('Files imported; the analysis is running.');
    } catch (e) {
      progressText.textContent = '';
      mount(result, h('p', { class: 'notice error', role: 'alert' }, explain(e)));
      send.disabled = false;
    } finally {
      progress.hidden = true;
    }
  });
  const headingId = uid('h');
  return h('div', null,
    h('h1', { id: headingId }, 'Upload exports for @', name(account.handle)),
    tabs(id, '/upload'),
    h('p', null, 'Every post of the files is analysed; records of other accounts and the account\'s own comments are set aside and counted. Nothing is stored when a file is not an export or holds no comment to analyse.'),
    drop, list,
    h('div', { class: 'field' }, h('label', { for: choice.id }, 'Classifier'), choice.select),
    h('p', null, send, ' ', progress, ' ', progressText),
    result);
}
