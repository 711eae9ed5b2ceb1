import type { ChalkInstance } from 'chalk';

/**
 * Small text pictures for terminal views: a bar per value, a gauge, and a
 * stacked bar. They carry no information the numbers beside them do not:
 * `-o json` keeps the plain numbers. Colour follows chalk (and NO_COLOR);
 * without colour the shapes still read.
 */

const FULL = '█';
const EMPTY = '░';
/** Segment shapes for a stacked bar, so parts stay apart without colour. */
const SHADES = ['█', '▓', '▒', '░'];

/** `████░░░░` for a fraction 0..1 over `width` cells. */
export function bar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = f > 0 ? Math.max(1, Math.round(f * width)) : 0;
  return FULL.repeat(filled) + EMPTY.repeat(width - filled);
}

/** `[██████░░░░░░] 52%`, red from 90%, yellow from 75%. */
export function gauge(used: number, max: number, width: number, c: ChalkInstance): string {
  if (!max) return `[${EMPTY.repeat(width)}] no limit`;
  const f = used / max;
  const paint = f >= 0.9 ? c.red : f >= 0.75 ? c.yellow : c.green;
  return `[${paint(bar(f, width))}] ${Math.round(f * 100)}%`;
}

/**
 * One line: the parts side by side in proportion (each at least one cell when
 * non-zero), then a legend `█ name n` that says which shape is which.
 */
export function stackedBar(parts: Array<[string, number]>, width: number, c: ChalkInstance): string[] {
  const shown = parts.filter(([, n]) => n > 0);
  const total = shown.reduce((a, [, n]) => a + n, 0);
  if (!total) return [];
  const colours = [c.cyan, c.magenta, c.yellow, c.green, c.blue, c.red];
  let cells = shown.map(([, n]) => Math.max(1, Math.round((n / total) * width)));
  // Rounding can overshoot: take the excess from the widest parts.
  while (cells.reduce((a, b) => a + b, 0) > width) cells = cells.map((w, i) => (i === cells.indexOf(Math.max(...cells)) ? w - 1 : w));
  const line = shown.map((_, i) => colours[i % colours.length](SHADES[i % SHADES.length].repeat(cells[i]))).join('');
  const legend = shown.map(([name, n], i) => `${colours[i % colours.length](SHADES[i % SHADES.length])} ${name} ${n.toLocaleString('en-US')}`);
  return [line, ...wrap(legend, width + 20)];
}

/** Joins items with two spaces into lines of at most `width` characters. */
function wrap(items: string[], width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const item of items) {
    const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
    if (current && visible(current) + 2 + visible(item) > width) {
      lines.push(current);
      current = item;
    } else current = current ? `${current}  ${item}` : item;
  }
  if (current) lines.push(current);
  return lines;
}

/** `1 key`, `2 keys` (`many` where adding an s is wrong: `misses`). */
export function plural(n: number | undefined, one: string, many = `${one}s`): string {
  return `${n ?? 0} ${n === 1 ? one : many}`;
}

/** 1536 -> "1.5 KB"; bytes to a short human size. */
export function humanBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}
