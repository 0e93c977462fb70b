// Building the page without ever parsing markup: every string from the server (handles,
// usernames, file names, messages) becomes a text node, so hostile input renders as text.

const SVG = 'http://www.w3.org/2000/svg';

// Bidirectional controls and invisible characters are shown as visible codes, so a name cannot
// reorder the text around it or hide what it is.
const INVISIBLE = /[\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;

export function reveal(text) {
  return String(text ?? '').replace(INVISIBLE, (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`);
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function set(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

// h('a', {href: '#/x', class: 'btn'}, 'text', child, ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  set(el, attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  set(el, attrs);
  append(el, children);
  return el;
}

// A name that came from data: isolated from the text around it, invisible characters shown.
export function name(text, attrs) {
  return h('bdi', attrs, reveal(text));
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// A link only to an address that is what it claims: an Instagram post, or this server.
export function externalLink(url, text) {
  const safe = typeof url === 'string' && /^https:\/\/(www\.)?instagram\.com\/(p|reel|tv)\/[A-Za-z0-9_-]+\/?$/.test(url);
  return safe ? h('a', { href: url, rel: 'noopener noreferrer', target: '_blank' }, reveal(text ?? url)) : h('span', null, reveal(text ?? url ?? ''));
}

let ids = 0;
export function uid(prefix = 'id') {
  ids += 1;
  return `${prefix}-${ids}`;
}

// Announces a message to screen readers and shows it in the status area.
export function announce(message, kind = 'info') {
  const area = document.getElementById('status');
  if (!area) return;
  mount(area, message ? h('p', { class: ['notice', kind] }, message) : null);
}
