// DOM helpers of the explorer page: element construction and the SVG heat maps (plain DOM, no
// framework: the page is a handful of panels that are redrawn whole after each computation).

type Attrs = Record<string, string | number | boolean | ((e: Event) => void)>;

/** An element with attributes (on* keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (typeof v === 'boolean') {
      if (v) el.setAttribute(k, '');
    } else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null) el.append(c);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** White to deep blue for v in [0, 1]. */
export function heatColor(v: number): string {
  const x = Math.max(0, Math.min(1, v));
  const r = Math.round(255 - x * (255 - 22)),
    g = Math.round(255 - x * (255 - 72)),
    b = Math.round(255 - x * (255 - 160));
  return `rgb(${r},${g},${b})`;
}

/**
 * A T x T heat map (row t = output position, column s = input position), each cell scaled by the
 * map's largest entry; labels name the tokens along both axes, a cell's title gives its value.
 * Labels longer than a toy token (words of a text) run upwards above the columns, cut at 10 characters.
 */
export function heatMap(map: number[][], labels: string[], opts: { cell?: number; rowTitle: string; colTitle: string }): SVGElement {
  const T = map.length,
    cell = opts.cell ?? Math.max(8, Math.min(18, Math.floor(560 / Math.max(T, 1))));
  const MAX_LABEL = 10;
  const cut = (l: string) => (l.length > MAX_LABEL ? `${l.slice(0, MAX_LABEL - 1)}…` : l);
  const longest = Math.min(MAX_LABEL, Math.max(1, ...labels.map((l) => l.length)));
  const upright = longest > 3;
  // room for the row labels at the left and, when they run upwards, the column labels at the top
  const pad = Math.max(44, 6 * longest + 20),
    padTop = upright ? pad : 44,
    size = T * cell;
  let max = 0;
  for (const row of map) for (const v of row) max = Math.max(max, Math.abs(v));
  const svg = s('svg', { width: pad + size + 8, height: padTop + size + 8, class: 'heatmap', role: 'img' });
  svg.append(s('text', { x: pad + size / 2, y: 11, 'text-anchor': 'middle', class: 'axis' }, opts.colTitle));
  const rowTitle = s(
    'text',
    { x: 10, y: padTop + size / 2, 'text-anchor': 'middle', class: 'axis', transform: `rotate(-90 10 ${padTop + size / 2})` },
    opts.rowTitle,
  );
  svg.append(rowTitle);
  const every = Math.ceil(10 / cell);
  for (let i = 0; i < T; i++) {
    if (i % every) continue;
    const label = cut(labels[i] ?? String(i)),
      x = pad + i * cell + cell / 2;
    svg.append(
      upright
        ? s(
            'text',
            { x: x + 3, y: padTop - 5, 'text-anchor': 'start', class: 'tick', transform: `rotate(-90 ${x + 3} ${padTop - 5})` },
            label,
          )
        : s('text', { x, y: padTop - 5, 'text-anchor': 'middle', class: 'tick' }, label),
    );
    svg.append(s('text', { x: pad - 4, y: padTop + i * cell + cell * 0.75, 'text-anchor': 'end', class: 'tick' }, label));
  }
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < T; c++) {
      const v = map[t][c];
      const rect = s('rect', {
        x: pad + c * cell,
        y: padTop + t * cell,
        width: cell,
        height: cell,
        fill: heatColor(max > 0 ? Math.abs(v) / max : 0),
      });
      rect.append(s('title', {}, `t=${t} ← s=${c}: ${v.toPrecision(3)}`));
      svg.append(rect);
    }
  }
  svg.append(s('rect', { x: pad, y: padTop, width: size, height: size, fill: 'none', stroke: '#8892a0', 'stroke-width': 1 }));
  return svg;
}

/** A <select> with the given options (value, label); `selected` picks one. */
export function select(options: [string, string][], selected: string, onChange: (v: string) => void, attrs: Attrs = {}): HTMLSelectElement {
  const el = h('select', { ...attrs, onchange: () => onChange(el.value) });
  for (const [value, label] of options) el.append(h('option', { value, ...(value === selected ? { selected: true } : {}) }, label));
  return el;
}

export function note(text: string, cls = 'note'): HTMLElement {
  return h('p', { class: cls }, text);
}
