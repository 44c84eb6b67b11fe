// The feature-dashboard view of the explorer: one page per SAE latent (URL hash
// #sae=<id>&latent=<j>), every panel filled from step 3's export, the Neuronpedia batch
// step-03-sae/dashboards/<id>/batch-0.json (interp/sae/dashboard.ts names the layout). A search box
// takes a latent number, or a string (quoted when it is digits, as toy-task token strings are) matched against each latent's top logits, the firing tokens of
// its top contexts and the names of its correlated variables.
import type { NeuronpediaActivationJson, NeuronpediaBatchJson, NeuronpediaFeatureJson } from '../../interp/sae/dashboard.ts';
import type { SaeRecord } from '../../steps/artefacts.ts';
import { fetchRunJson } from './compute.ts';
import { h, heatColor, note } from './view.ts';

// the layout step 3 writes (a type-only import: nothing of interp/sae reaches the page's bundle)
type Activation = NeuronpediaActivationJson;
type Feature = NeuronpediaFeatureJson;
type Batch = NeuronpediaBatchJson;

/** Whether the URL asks for the dashboard view. */
export function wantsDashboard(): boolean {
  return new URLSearchParams(location.hash.slice(1)).has('sae');
}

const idOf = (r: SaeRecord & { dashboard?: string }) => r.dashboard?.split('/')[1] ?? '';
const batches = new Map<string, Promise<Batch | null>>();

/** Renders the dashboard for the hash's SAE and latent into `root`. */
export async function renderDashboard(root: HTMLElement, saes: (SaeRecord & { dashboard?: string })[] | null): Promise<void> {
  const withDash = (saes ?? []).filter((r) => r.dashboard);
  if (!withDash.length) {
    root.replaceChildren(
      note(
        'this run has no feature dashboards (step-03-sae/saes.json rows without a dashboard file: step 3 has not run, or predates them)',
        'missing',
      ),
    );
    return;
  }
  const q = new URLSearchParams(location.hash.slice(1));
  const rec = withDash.find((r) => idOf(r) === q.get('sae')) ?? withDash[0];
  const id = idOf(rec);
  if (!batches.has(id)) batches.set(id, fetchRunJson<Batch>(`step-03-sae/${rec.dashboard}`));
  const batch = await batches.get(id)!;
  if (!batch) {
    root.replaceChildren(note(`step-03-sae/${rec.dashboard} is missing`, 'missing'));
    return;
  }
  const j = Math.min(batch.features.length - 1, Math.max(0, Number(q.get('latent') ?? 0) || 0));
  const f = batch.features[j];
  const go = (sae: string, latent: number) => {
    location.hash = `sae=${encodeURIComponent(sae)}&latent=${latent}`;
  };
  const saeSelect = h('select', { id: 'dash-sae', onchange: (e) => go((e.target as HTMLSelectElement).value, 0) });
  for (const r of withDash) saeSelect.append(h('option', { value: idOf(r), ...(idOf(r) === id ? { selected: true } : {}) }, idOf(r)));
  const results = h('div', { id: 'dash-results', class: 'note' });
  const search = h('input', {
    id: 'dash-search',
    type: 'search',
    placeholder: 'latent number, token or variable ("3": the token)',
    size: 30,
  });
  const runSearch = () => {
    // a bare number is a latent; "quoted" text is always a string (token strings may be digits)
    const raw = search.value.trim();
    if (/^\d+$/.test(raw)) return go(id, Number(raw));
    const text = raw.replace(/^"(.*)"$/, '$1');
    results.replaceChildren(
      ...searchLatents(batch, text).map((m) =>
        h('a', { href: `#sae=${encodeURIComponent(id)}&latent=${m.latent}`, class: 'hit-link' }, `#${m.latent} (${m.why}) `),
      ),
    );
    if (!results.childNodes.length) results.textContent = text ? `no latent matches "${text}"` : '';
  };
  search.addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'Enter') runSearch();
  });
  const top = f.activations.filter((a) => a.bin_min === -1);
  const quantiles = f.activations.filter((a) => a.bin_min !== -1);
  root.replaceChildren(
    h(
      'section',
      { class: 'wide' },
      h(
        'div',
        { class: 'row' },
        h('a', { href: '#' }, '← explorer'),
        'SAE ',
        saeSelect,
        ` latent ${j} of ${batch.features.length}`,
        search,
        h('button', { onclick: runSearch }, 'search'),
      ),
      results,
      h(
        'p',
        { class: 'note' },
        `${batch.layer}, ${batch.sae_set} SAE of ${batch.model_id}, over ${batch.rows} held-out rows. ${batch.notes.join('; ')}.`,
      ),
    ),
    panel('Activation density', 'dash-density', densityPanel(f)),
    panel('Top logits of the decoder direction', 'dash-logits', logitsPanel(f)),
    panel('Top-activating contexts', 'dash-top', contexts(top, f.maxActApprox), true),
    panel('Examples by activation quantile', 'dash-quantiles', quantilePanel(quantiles, f.maxActApprox), true),
    panel('Correlated variables (Pearson r)', 'dash-correlates', correlatesPanel(f)),
  );
}

function panel(title: string, id: string, body: Node, wide = false): HTMLElement {
  return h('section', wide ? { class: 'wide' } : {}, h('h2', {}, title), h('div', { id }, body));
}

/** Latents whose top logits, top-context firing tokens or correlated variables contain `text`. */
export function searchLatents(batch: Batch, text: string): { latent: number; why: string }[] {
  const t = text.toLowerCase();
  if (!t) return [];
  const out: { latent: number; why: string }[] = [];
  for (const f of batch.features) {
    const why: string[] = [];
    if (f.pos_str.some((s) => s.toLowerCase().includes(t))) why.push('top logit');
    if (f.activations.some((a) => a.bin_min === -1 && a.tokens[a.qualifying_token_index]?.toLowerCase().includes(t)))
      why.push('top context');
    if (f.correlated_variables.some((c) => c.variable.toLowerCase().includes(t))) why.push('correlate');
    if (why.length) out.push({ latent: f.feature_index, why: why.join(', ') });
  }
  return out.slice(0, 40);
}

function densityPanel(f: Feature): Node {
  const heights = f.freq_hist_data_bar_heights;
  const wrap = h('div', {});
  wrap.append(
    h(
      'p',
      { class: 'note' },
      `active on ${(100 * f.frac_nonzero).toFixed(2)}% of tokens (log10 density ${f.log10_density.toFixed(2)}), max activation ${f.maxActApprox.toPrecision(4)}`,
    ),
  );
  if (!heights.length) {
    wrap.append(note('this latent never fires on the held-out rows', 'missing'));
    return wrap;
  }
  const W = 420,
    H = 120,
    max = Math.max(...heights),
    bw = W / heights.length;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'histogram');
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H + 18));
  heights.forEach((c, i) => {
    const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    const bh = max ? (c / max) * H : 0;
    for (const [k, v] of Object.entries({ x: i * bw + 1, y: H - bh, width: bw - 2, height: bh, fill: '#16489f' }))
      r.setAttribute(k, String(v));
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.textContent = `activation ≈ ${f.freq_hist_data_bar_values[i].toPrecision(3)}: ${c}`;
    r.append(title);
    svg.append(r);
  });
  const label = document.createElementNS('http://www.w3.org/2000/svg', 'text');
  label.setAttribute('x', '0');
  label.setAttribute('y', String(H + 14));
  label.setAttribute('class', 'axis');
  label.textContent = `0 … ${f.maxActApprox.toPrecision(3)} (non-zero activations)`;
  svg.append(label);
  wrap.append(svg);
  return wrap;
}

function logitsPanel(f: Feature): Node {
  if (!f.pos_str.length) return note('no logits: the SAE is not on the residual stream', 'missing');
  const table = h(
    'table',
    { class: 'latents' },
    h('tr', {}, h('th', {}, 'positive'), h('th', {}, ''), h('th', {}, 'negative'), h('th', {}, '')),
  );
  for (let i = 0; i < f.pos_str.length; i++)
    table.append(
      h(
        'tr',
        {},
        h('td', { class: 'lat' }, f.pos_str[i]),
        h('td', {}, f.pos_values[i].toFixed(3)),
        h('td', { class: 'lat' }, f.neg_str[i] ?? ''),
        h('td', {}, f.neg_values[i]?.toFixed(3) ?? ''),
      ),
    );
  return table;
}

/** Each context as a row of tokens shaded by the latent's activation, the firing token outlined. */
function contexts(list: Activation[], max: number): Node {
  if (!list.length) return note('no contexts: the latent never fires on the held-out rows', 'missing');
  const box = h('div', {});
  for (const a of list) {
    const row = h(
      'div',
      { class: 'context' },
      h(
        'span',
        { class: 'ctx-where' },
        `seq ${a.sequence} pos ${a.start + a.qualifying_token_index}: ${a.values[a.qualifying_token_index].toPrecision(3)} `,
      ),
    );
    a.tokens.forEach((t, i) => {
      const cls = i === a.qualifying_token_index ? 'tok fire' : 'tok';
      const shade = max > 0 ? a.values[i] / max : 0;
      row.append(
        h(
          'span',
          {
            class: cls,
            style: `background:${heatColor(shade)}${shade > 0.6 ? ';color:white' : ''}`,
            title: `activation ${a.values[i].toPrecision(3)}`,
          },
          t,
        ),
      );
    });
    box.append(row);
  }
  return box;
}

function quantilePanel(list: Activation[], max: number): Node {
  if (!list.length) return note('no quantile examples: the latent never fires on the held-out rows', 'missing');
  const box = h('div', {});
  const groups = new Map<string, Activation[]>();
  for (const a of list) {
    const key = `${a.bin_min.toPrecision(3)} – ${a.bin_max.toPrecision(3)} (${(100 * a.bin_contains).toFixed(0)}% of active tokens)`;
    groups.set(key, [...(groups.get(key) ?? []), a]);
  }
  for (const [key, as] of [...groups].reverse()) box.append(h('h3', { class: 'quantile' }, `activation ${key}`), contexts(as, max));
  return box;
}

function correlatesPanel(f: Feature): Node {
  if (!f.correlated_variables.length) return note('no correlates (the latent is constant on the held-out rows)', 'missing');
  const table = h('table', { class: 'latents' }, h('tr', {}, h('th', {}, 'variable'), h('th', {}, 'r')));
  for (const c of f.correlated_variables)
    table.append(h('tr', {}, h('td', { class: 'lat' }, c.variable), h('td', {}, c.pearson.toFixed(3))));
  return table;
}
