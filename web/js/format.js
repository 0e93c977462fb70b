// Numbers as people read them: shares in per cent with their intervals, counts with
// separators, dates and ages of data.

export const count = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

export function pct(share, digits = 1) {
  if (share === null || share === undefined || Number.isNaN(share)) return '–';
  return `${(share * 100).toFixed(digits)} %`;
}

export function ci(interval, digits = 1) {
  if (!interval) return '';
  return `[${(interval[0] * 100).toFixed(digits)}–${(interval[1] * 100).toFixed(digits)}]`;
}

export function points(delta, digits = 1) {
  const v = delta * 100;
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)} pt`;
}

export function plural(n, word, many) {
  return `${count(n)} ${n === 1 ? word : many || `${word}s`}`;
}

export function date(value) {
  if (!value) return '–';
  const d = new Date(value);
  return d.toISOString().slice(0, 10);
}

export function dateTime(value) {
  if (!value) return '–';
  const d = new Date(value);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
}

export function ago(value) {
  if (!value) return 'never';
  const secs = (Date.now() - new Date(value).getTime()) / 1000;
  if (secs < 90) return 'just now';
  const mins = secs / 60;
  if (mins < 90) return `${Math.round(mins)} minutes ago`;
  const hours = mins / 60;
  if (hours < 36) return `${Math.round(hours)} hours ago`;
  const days = hours / 24;
  if (days < 60) return `${Math.round(days)} days ago`;
  return `${Math.round(days / 30)} months ago`;
}

export function bytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} bytes`;
}

export function usd(v, digits = 4) {
  return `$${Number(v || 0).toFixed(digits)}`;
}

const STAGES = {
  scrape: 'scraping posts and comments',
  fetch_pictures: 'downloading profile pictures',
  classify: 'classifying pictures',
  aggregate: 'counting the audience',
  done: 'done',
};

export function stage(s) {
  return STAGES[s] || s;
}

export const BRACKETS = ['13-17', '18-24', '25-34', '35-44', '45-54', '55-64', '65+'];

export const TYPE_LABELS = {
  person: 'person',
  group: 'group photo',
  no_person: 'no person',
  default_avatar: 'default avatar',
};
