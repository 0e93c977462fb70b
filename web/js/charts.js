// Charts drawn as SVG from the API's numbers: every bar carries its 95 % interval as a
// whisker and its value as text, so the chart reads without colour and prints as it shows.

import { h, s } from './dom.js';
import { ci, count, pct } from './format.js';

// Charts are drawn at the width they will be shown (text stays at its size on a phone).
function width() {
  return Math.round(Math.max(300, Math.min(640, (window.innerWidth || 640) - 56)));
}

function frame(W, height, label) {
  return s('svg', { viewBox: `0 0 ${W} ${height}`, width: W, height, class: 'chart', role: 'img', 'aria-label': label },
    s('title', null, label));
}

// Horizontal bars: [{label, share, ci95, count, kind}] on a 0-100 % axis. On a narrow screen
// each row puts its label and value above its bar.
export function bars(rows, { title = 'Shares', labelWidth = 170 } = {}) {
  const W = width();
  const narrow = W < 520;
  const rowH = narrow ? 44 : 30;
  const top = 8;
  const left = narrow ? 4 : labelWidth;
  const plot = narrow ? W - 12 : W - labelWidth - 170;
  const height = top + rows.length * rowH + 22;
  const svg = frame(W, height, `${title}: ${rows.map((r) => `${r.label} ${pct(r.share)} ${ci(r.ci95)}`).join('; ')}`);
  const x = (v) => left + Math.max(0, Math.min(1, v)) * plot;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s('line', { x1: x(t), x2: x(t), y1: top - 4, y2: height - 18, class: 'grid' }));
    svg.append(s('text', { x: x(t), y: height - 4, class: 'axis', 'text-anchor': t === 0 ? 'start' : t === 1 ? 'end' : 'middle' }, `${t * 100}%`));
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const barY = narrow ? y + 20 : y + 6;
    const value = `${pct(r.share)} ${ci(r.ci95)}${r.count !== undefined ? `  n=${count(r.count)}` : ''}`;
    if (narrow) {
      svg.append(s('text', { x: left, y: y + 14, class: 'label' }, r.label));
      svg.append(s('text', { x: W - 6, y: y + 14, class: 'value', 'text-anchor': 'end' }, value));
    } else {
      svg.append(s('text', { x: labelWidth - 8, y: y + 19, class: 'label', 'text-anchor': 'end' }, r.label));
      svg.append(s('text', { x: labelWidth + plot + 10, y: y + 19, class: 'value' }, value));
    }
    svg.append(s('rect', { x: x(0), y: barY, width: Math.max(0, x(r.share) - x(0)), height: 18, class: `bar ${r.kind || ''}` }));
    if (r.ci95) {
      const [lo, hi] = r.ci95;
      const cy = barY + 9;
      svg.append(s('line', { x1: x(lo), x2: x(hi), y1: cy, y2: cy, class: 'whisker' }));
      svg.append(s('line', { x1: x(lo), x2: x(lo), y1: cy - 6, y2: cy + 6, class: 'whisker' }));
      svg.append(s('line', { x1: x(hi), x2: x(hi), y1: cy - 6, y2: cy + 6, class: 'whisker' }));
    }
  });
  return svg;
}

// The age × gender pyramid: women to the left, men to the right, people whose gender was not
// given in a column of their own; every cell a share of all people given an age.
export function pyramid(table) {
  const W = width();
  const rowH = 28;
  const top = 26;
  const unknownW = Math.round(W * 0.16);
  const unknownX = W - unknownW - 44;
  const labelW = 44;
  const mid = Math.round((unknownX - 16 - labelW) / 2);
  const half = mid - 50;
  const max = Math.max(0.05, ...table.rows.flatMap((r) => [r.female.ci95[1], r.male.ci95[1], r.unknown.ci95[1]]));
  const scale = (v) => (v / max) * half;
  const height = top + table.rows.length * rowH + 8;
  const svg = frame(W, height, `Age by gender, ${count(table.n)} people: ${table.rows.map((r) =>
    `${r.bracket} women ${pct(r.female.share)}, men ${pct(r.male.share)}, gender unknown ${pct(r.unknown.share)}`).join('; ')}`);
  svg.append(s('text', { x: mid - 6, y: 14, class: 'axis', 'text-anchor': 'end' }, '← women'));
  svg.append(s('text', { x: mid + labelW + 6, y: 14, class: 'axis' }, 'men →'));
  svg.append(s('text', { x: unknownX, y: 14, class: 'axis' }, 'unknown'));
  table.rows.forEach((r, i) => {
    const y = top + i * rowH;
    svg.append(s('text', { x: mid + labelW / 2, y: y + 17, class: 'label', 'text-anchor': 'middle' }, r.bracket));
    const left = mid - 2;
    const right = mid + labelW + 2;
    const fw = scale(r.female.share);
    svg.append(s('rect', { x: left - fw, y: y + 4, width: fw, height: 18, class: 'bar female' }));
    whisker(svg, left - scale(r.female.ci95[1]), left - scale(r.female.ci95[0]), y + 13);
    // Each value sits beyond its whisker, clear of the bar, the whisker and the bracket label.
    svg.append(s('text', { x: left - scale(Math.max(r.female.share, r.female.ci95[1])) - 6, y: y + 17, class: 'value small', 'text-anchor': 'end' }, pct(r.female.share)));
    const mw = scale(r.male.share);
    svg.append(s('rect', { x: right, y: y + 4, width: mw, height: 18, class: 'bar male' }));
    whisker(svg, right + scale(r.male.ci95[0]), right + scale(r.male.ci95[1]), y + 13);
    svg.append(s('text', { x: right + scale(Math.max(r.male.share, r.male.ci95[1])) + 6, y: y + 17, class: 'value small' }, pct(r.male.share)));
    const uw = (r.unknown.share / max) * unknownW;
    svg.append(s('rect', { x: unknownX, y: y + 4, width: uw, height: 18, class: 'bar unknown' }));
    svg.append(s('text', { x: unknownX + uw + 4, y: y + 17, class: 'value small' }, pct(r.unknown.share)));
  });
  return svg;
}

function whisker(svg, a, b, y) {
  svg.append(s('line', { x1: a, x2: b, y1: y, y2: y, class: 'whisker' }));
  svg.append(s('line', { x1: a, x2: a, y1: y - 5, y2: y + 5, class: 'whisker' }));
  svg.append(s('line', { x1: b, x2: b, y1: y - 5, y2: y + 5, class: 'whisker' }));
}

// The coverage funnel: each step's bar in proportion to the first.
export function funnel(steps) {
  const W = width();
  const rowH = 30;
  const labelWidth = W < 520 ? 140 : 230;
  const plot = W - labelWidth - 70;
  const first = Math.max(1, steps[0].value);
  const height = steps.length * rowH + 6;
  const svg = frame(W, height, `Coverage: ${steps.map((st) => `${st.label} ${count(st.value)}`).join(', ')}`);
  steps.forEach((st, i) => {
    const y = i * rowH + 3;
    svg.append(s('text', { x: labelWidth - 8, y: y + 18, class: 'label', 'text-anchor': 'end' }, st.label));
    svg.append(s('rect', { x: labelWidth, y: y + 4, width: Math.max(1, (st.value / first) * plot), height: 20, class: 'bar funnel' }));
    svg.append(s('text', { x: labelWidth + (st.value / first) * plot + 8, y: y + 19, class: 'value' }, count(st.value)));
  });
  return svg;
}

// A share over time with its interval band; marked points are significant changes.
export function trend(points, { title }) {
  const W = Math.min(width(), 560);
  const height = 190;
  const left = 46;
  const right = 16;
  const top = 12;
  const bottom = 34;
  const svg = frame(W, height, `${title}: ${points.map((p) => `${p.label} ${pct(p.share)} ${ci(p.ci95)}`).join('; ')}`);
  const lo = Math.max(0, Math.min(...points.map((p) => p.ci95[0])) - 0.05);
  const hi = Math.min(1, Math.max(...points.map((p) => p.ci95[1])) + 0.05);
  const x = (i) => (points.length === 1 ? (left + W - right) / 2 : left + (i / (points.length - 1)) * (W - left - right));
  const y = (v) => top + (1 - (v - lo) / Math.max(0.01, hi - lo)) * (height - top - bottom);
  for (const t of [lo, (lo + hi) / 2, hi]) {
    svg.append(s('line', { x1: left, x2: W - right, y1: y(t), y2: y(t), class: 'grid' }));
    svg.append(s('text', { x: left - 6, y: y(t) + 4, class: 'axis', 'text-anchor': 'end' }, `${Math.round(t * 100)}%`));
  }
  const band = points.map((p, i) => `${x(i)},${y(p.ci95[1])}`).concat(points.map((p, i) => `${x(i)},${y(p.ci95[0])}`).reverse());
  svg.append(s('polygon', { points: band.join(' '), class: 'band' }));
  svg.append(s('polyline', { points: points.map((p, i) => `${x(i)},${y(p.share)}`).join(' '), class: 'line' }));
  points.forEach((p, i) => {
    svg.append(s('circle', { cx: x(i), cy: y(p.share), r: p.significant ? 6 : 3.5, class: p.significant ? 'point significant' : 'point' }));
    svg.append(s('text', { x: x(i), y: height - 8, class: 'axis', 'text-anchor': 'middle' }, p.label));
  });
  return svg;
}

// A small legend of classes.
export function legend(items) {
  return h('ul', { class: 'legend' }, items.map(([kind, label]) => h('li', null, h('span', { class: `swatch ${kind}`, 'aria-hidden': 'true' }), label)));
}
