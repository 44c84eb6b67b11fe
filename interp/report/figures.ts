// Figures as SVG, rendered in Node (or a page) from declarative Vega-Lite specs. The helpers below
// build the specs the steps use most; any Vega-Lite spec can be rendered with renderSvg.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { uniqueSvgIds } from './svg-ids.ts';

export type Spec = vl.TopLevelSpec;
type Row = Record<string, number | string | null>;

const BASE = { background: 'white', config: { font: 'sans-serif', view: { stroke: null } } } as const;

/**
 * Renders a Vega-Lite spec to a standalone SVG string (no network, no canvas), its ids unique to
 * the figure and the same whatever the process rendered before (svg-ids.ts).
 */
export async function renderSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile({ ...BASE, ...spec } as Spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return uniqueSvgIds(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/** Fields of the rows on the two axes (and the colour), with their axis titles (default: the field). */
export interface XYOptions {
  title: string;
  x: string;
  y: string;
  color?: string;
  xTitle?: string;
  yTitle?: string;
  width?: number;
}

export interface LineOptions extends XYOptions {
  logY?: boolean;
  logX?: boolean;
  height?: number;
  points?: boolean;
}

export function lineChart(rows: Row[], o: LineOptions): Spec {
  return {
    title: o.title,
    width: o.width ?? 420,
    height: o.height ?? 240,
    data: { values: rows },
    mark: { type: 'line', point: o.points ?? false },
    encoding: {
      x: { field: o.x, type: 'quantitative', title: o.xTitle ?? o.x, scale: o.logX ? { type: 'log' } : {} },
      y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: o.logY ? { type: 'log' } : { zero: false } },
      ...(o.color ? { color: { field: o.color, type: 'nominal' } } : {}),
    },
  } as Spec;
}

export interface HeatmapOptions {
  title: string;
  rowTitle: string;
  colTitle: string;
  valueTitle?: string;
  scheme?: string;
  width?: number;
  height?: number;
}

/** matrix[r][c] as a heat map, row 0 at the top. */
export function heatmap(matrix: number[][], o: HeatmapOptions): Spec {
  const rows: Row[] = [];
  matrix.forEach((r, i) => r.forEach((v, j) => rows.push({ row: i, col: j, value: Number.isFinite(v) ? v : null })));
  return {
    title: o.title,
    width: o.width ?? 320,
    height: o.height ?? 320,
    data: { values: rows },
    mark: 'rect',
    encoding: {
      x: { field: 'col', type: 'ordinal', title: o.colTitle, axis: { labelOverlap: 'greedy' } },
      y: { field: 'row', type: 'ordinal', title: o.rowTitle, axis: { labelOverlap: 'greedy' } },
      color: { field: 'value', type: 'quantitative', title: o.valueTitle ?? 'value', scale: { scheme: o.scheme ?? 'viridis' } },
    },
  } as Spec;
}

export interface IntervalOptions {
  title: string;
  category: string;
  value: string;
  lo: string;
  hi: string;
  color?: string;
  valueTitle?: string;
  width?: number;
}

/** Point estimates with interval bars, per category (e.g. effect next to its control). */
export function intervalChart(rows: Row[], o: IntervalOptions): Spec {
  const color = o.color ? { color: { field: o.color, type: 'nominal' } } : {};
  return {
    title: o.title,
    width: o.width ?? 380,
    data: { values: rows },
    // long claim labels: let them use up to 360 px before Vega truncates them with an ellipsis
    encoding: { y: { field: o.category, type: 'nominal', title: null, sort: null, axis: { labelLimit: 360 } } },
    layer: [
      {
        mark: 'rule',
        encoding: { x: { field: o.lo, type: 'quantitative', title: o.valueTitle ?? o.value }, x2: { field: o.hi }, ...color },
      },
      { mark: { type: 'point', filled: true, size: 60 }, encoding: { x: { field: o.value, type: 'quantitative' }, ...color } },
    ],
  } as Spec;
}

export interface BarOptions extends XYOptions {
  horizontal?: boolean;
}

export function barChart(rows: Row[], o: BarOptions): Spec {
  const cat = { field: o.x, type: 'nominal', title: o.xTitle ?? o.x, sort: null };
  const val = { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y };
  return {
    title: o.title,
    width: o.width ?? 380,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      ...(o.horizontal ? { y: cat, x: val } : { x: cat, y: val }),
      ...(o.color ? { color: { field: o.color, type: 'nominal' }, xOffset: o.horizontal ? undefined : { field: o.color } } : {}),
    },
  } as Spec;
}

export function histogram(values: number[], o: { title: string; xTitle: string; bins?: number; logX?: boolean }): Spec {
  return {
    title: o.title,
    width: 380,
    height: 220,
    data: { values: values.filter(Number.isFinite).map((v) => ({ v: o.logX ? Math.log10(v) : v })) },
    mark: 'bar',
    encoding: {
      x: { field: 'v', type: 'quantitative', bin: { maxbins: o.bins ?? 40 }, title: o.logX ? `log10 ${o.xTitle}` : o.xTitle },
      y: { aggregate: 'count', type: 'quantitative', title: 'count' },
    },
  } as Spec;
}

export function scatter(rows: Row[], o: { title: string; x: string; y: string; color?: string; xTitle?: string; yTitle?: string }): Spec {
  return {
    title: o.title,
    width: 360,
    height: 300,
    data: { values: rows },
    mark: { type: 'point', opacity: 0.7 },
    encoding: {
      x: { field: o.x, type: 'quantitative', title: o.xTitle ?? o.x, scale: { zero: false } },
      y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: { zero: false } },
      ...(o.color ? { color: { field: o.color, type: 'nominal' } } : {}),
    },
  } as Spec;
}
