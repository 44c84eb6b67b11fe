// Figure ids (interp/report/svg-ids.ts through renderSvg): Vega's id counters live for the whole
// process, so without the renaming a figure's ids depend on what was rendered before it and two
// processes' figures share ids (issue 17). vega.resetSVGDefIds() stands in for a fresh process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as vega from 'vega';
import { heatmap, lineChart, renderSvg, type Spec, svgIds, svgRefs, uniqueSvgIds } from '../../../interp/report/index.ts';

// a colour legend is a linear gradient
const ramp = (k: number) =>
  heatmap(
    [
      [0, k],
      [2 * k, 3],
    ],
    { title: `ramp ${k}`, rowTitle: 'r', colTitle: 'c' },
  );
// a clipped mark (a line past its fixed domain) gets a clip path
const clipped: Spec = {
  width: 200,
  height: 100,
  data: { values: [0, 1, 2, 3].map((x) => ({ x, y: x * x })) },
  mark: { type: 'line', clip: true },
  encoding: {
    x: { field: 'x', type: 'quantitative' },
    y: { field: 'y', type: 'quantitative', scale: { domain: [0, 4] } },
    color: { field: 'y', type: 'quantitative' },
  },
} as Spec;

async function fresh(spec: Spec): Promise<string> {
  vega.resetSVGDefIds();
  return renderSvg(spec);
}

test('the same spec renders byte-identical whether fresh or after other figures advanced Vega counters', async () => {
  const first = await fresh(ramp(1));
  const firstClip = await fresh(clipped);
  for (const k of [2, 3, 4]) await renderSvg(ramp(k));
  await renderSvg(clipped);
  assert.ok(svgIds(first).length > 0 && svgIds(firstClip).length > 1, 'the figures define ids (gradient; clip path and gradient)');
  assert.is(await renderSvg(ramp(1)), first);
  assert.is(await renderSvg(clipped), firstClip);
  // what step 12 does to a figure file it reads: a figure renderSvg made comes out unchanged
  assert.is(uniqueSvgIds(firstClip), firstClip);
});

test('different figures share no id, even rendered by "different processes" (counters reset)', async () => {
  const figs = [
    await fresh(ramp(1)),
    await fresh(ramp(2)),
    await fresh(clipped),
    await fresh(lineChart([{ a: 1, b: 2 }], { title: 't', x: 'a', y: 'b' })),
  ];
  assert.ok(figs[2].includes('<clipPath'), 'the clipped line has a clip path');
  const seen = new Map<string, number>();
  figs.forEach((svg, i) => {
    for (const id of svgIds(svg)) {
      assert.ok(!seen.has(id), `id ${id} of figure ${i} also in figure ${seen.get(id)}`);
      seen.set(id, i);
    }
  });
  assert.ok(seen.size >= 3, `${seen.size} ids in all`);
});

test('every reference in a figure resolves to an id it defines', async () => {
  for (const svg of [await renderSvg(ramp(5)), await renderSvg(clipped)]) {
    const ids = new Set(svgIds(svg));
    const refs = svgRefs(svg);
    assert.ok(refs.length > 0, 'the figure refers to its definitions');
    for (const r of refs) assert.ok(ids.has(r), `reference #${r} has no id="${r}" in the figure`);
  }
});

test('uniqueSvgIds: every reference form rewritten, old numbering and new give the same figure, idempotent', () => {
  const svg = (g: number, c: number) =>
    `<svg><defs><linearGradient id="gradient_${g}"/><clipPath id="clip${c}"><rect/></clipPath><use id="u" href="#clip${c}"/></defs>` +
    `<rect fill="url(#gradient_${g})" clip-path="url(http://page/x.html#clip${c})"/><use xlink:href="#u"/><rect fill="url(#elsewhere)"/></svg>`;
  const a = uniqueSvgIds(svg(0, 1));
  assert.is(uniqueSvgIds(svg(7, 12)), a, 'ids numbered by another process give the same figure');
  assert.is(uniqueSvgIds(a), a, 'idempotent');
  const ids = svgIds(a);
  assert.is(ids.length, 3);
  assert.ok(
    ids.every((id) => /^f[0-9a-z]+-\d$/.test(id)),
    ids.join(' '),
  );
  // the gradient, both clip references (plain and with a page address), href and xlink:href
  assert.equal(svgRefs(a).filter((r) => ids.includes(r)).length, 4);
  assert.ok(a.includes('url(http://page/x.html#'), 'a page address before # is kept');
  assert.ok(a.includes('url(#elsewhere)'), 'a reference to an id the figure does not define is left alone');
  assert.not.equal(svgIds(uniqueSvgIds(svg(0, 1).replace('<rect/>', '<circle/>')))[0], ids[0], 'another figure gets other ids');
});

test.run();
