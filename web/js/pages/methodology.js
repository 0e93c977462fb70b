// What each number means, the calibrations that correct them (their confusion matrices), what
// is never inferred and why, and the privacy notice for the people analysed.

import { get } from '../api.js';
import { h } from '../dom.js';
import { count } from '../format.js';

// Markdown's headings, lists and paragraphs as elements (text only: nothing is parsed as markup).
function markdown(text) {
  const out = [];
  let list = null;
  let para = [];
  const flush = () => {
    if (para.length) out.push(h('p', null, para.join(' ').replace(/\*\*|`/g, '')));
    para = [];
  };
  for (const line of text.split('\n')) {
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    const item = line.match(/^\s*[-*]\s+(.*)$/);
    if (heading) {
      flush();
      list = null;
      out.push(h(`h${Math.min(4, heading[1].length + 1)}`, null, heading[2]));
    } else if (item) {
      flush();
      if (!list) {
        list = h('ul');
        out.push(list);
      }
      list.append(h('li', null, item[1].replace(/\*\*|`/g, '')));
    } else if (!line.trim()) {
      flush();
      list = null;
    } else if (list && /^\s+/.test(line)) {
      list.lastChild.append(` ${line.trim().replace(/\*\*|`/g, '')}`);
    } else {
      para.push(line.trim());
    }
  }
  flush();
  return out;
}

function matrix(title, m) {
  if (!m) return null;
  const total = m.counts.reduce((a, r) => a + r.reduce((x, y) => x + y, 0), 0);
  return h('div', { class: 'scroll' }, h('table', { class: 'data matrix' },
    h('caption', null, `${title}: how many pictures of each true class (rows) got each answer (columns); ${count(total)} pictures.`),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'true \\ answer'), m.predicted.map((p) => h('th', { scope: 'col' }, p)))),
    h('tbody', null, m.true_classes.map((t, i) => h('tr', null, h('th', { scope: 'row' }, t),
      m.counts[i].map((v, j) => h('td', { class: i === j ? 'num diag' : 'num' }, count(v))))))));
}

export async function page() {
  const m = await get('/methodology');
  return h('article', { class: 'prose' },
    h('h1', null, 'Methodology'),
    h('h2', null, 'What the numbers mean'),
    h('ul', null,
      h('li', null, 'An audience is the unique people who commented on the covered posts, less the account itself and the co-authors of its posts.'),
      h('li', null, 'Each share is of the commenters who could be classified on equal terms (the coverage funnel on every report says how many that is, and why the others are not). Default avatars known from their link alone are counted apart when other pictures could not be downloaded.'),
      h('li', null, 'n is the sample a share rests on; the interval is the 95 % Wilson score interval of a raw share, or, for a corrected share, the 2.5th to 97.5th percentile of a bootstrap that resamples both the audience and the calibration.'),
      h('li', null, 'Corrected shares undo the classifier\'s measured errors: the composition most likely to have produced the observed answers, given the confusion matrices below (maximum likelihood, by EM on the simplex).'),
      h('li', null, 'A change over time or between accounts is marked significant when the 95 % interval of the difference of two raw shares (Newcombe\'s hybrid score method) leaves out zero.'),
      h('li', null, 'Counts for a single post are withheld below 5 classified people: a post\'s commenters are public, and a small count would say what was inferred about people one can pick out.')),
    h('h2', null, 'Never inferred'),
    h('p', null, `AudienceLens never infers ${m.never_inferred.join(', ')} from pictures or text. These are special categories of personal data: inferring them about people who only left a comment is neither necessary for audience analysis nor fair to them, and the classifiers' errors would fall hardest on the groups concerned.`),
    h('h2', null, 'The calibrations'),
    m.calibrations.length ? m.calibrations.map((c) => h('section', { class: 'panel' },
      h('h3', null, c.model),
      h('p', { class: 'meta' }, `${c.dataset.description} Measured ${c.created}.`),
      matrix('Gender', c.gender), matrix('Age bracket (exact ages)', c.age_bracket))) : h('p', null, 'No calibration is loaded: shares are reported raw.'),
    h('h2', null, 'Privacy notice for the people analysed'),
    h('div', { class: 'notice-text' }, markdown(m.privacy_notice)));
}
