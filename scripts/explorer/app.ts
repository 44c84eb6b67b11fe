// The explorer page (served by scripts/explore.ts): pick a trained model of the run and a task,
// sample or edit an input, and see what the model computes on it, live in the page:
// predictions and accuracy, a temporal map per layer, the top SAE latents per position, and the
// effect of zero-ablating a circuit (or typed channels). Missing artefacts are said on the page.
// A model with a tokenizer.json (a language model) takes text instead of token ids, of any length
// up to its context; tokens show as strings, and since free text has no task targets the page shows
// its top next-token predictions where a task model's accuracy would be.
// Computations run one at a time (the engine's tidy scopes are a stack), through `queue`.
import * as MI from '../../browser.ts';
import type { Circuit, SaeRecord, TrainedModel } from '../../steps/artefacts.ts';
// the server's answer at /run-index.json (type only: nothing of the server is bundled)
import type { RunIndex } from '../explore.ts';
import {
  batchAccuracy,
  fetchRunJson,
  textBatch,
  topTokens,
  IGNORE,
  loadModel,
  logProb,
  loadSae,
  parseChannels,
  pickBackend,
  predict,
  runLogits,
  hiddenAttentionMap,
  influenceMaps,
  topLatents,
  zeroAblation,
  type AblationSite,
  type Predictions,
  type TemporalMode,
} from './compute.ts';
import { renderDashboard, wantsDashboard } from './dashboard.ts';
import { h, heatColor, heatMap, note, select } from './view.ts';

/** Sequences sampled (from a fixed seed) to measure accuracy, clean and ablated. */
const EVAL_SEQUENCES = 32;
const TOP_LATENTS = 3;
/** Next tokens shown per position for a language model. */
const TOP_NEXT = 3;
/** The text a language model starts with (Brown's word tokenizer knows these words). */
const DEFAULT_TEXT = 'The man said that he would go to the city , but the old house was not there .';

/** A model the page can load: one of step 1's checkpoints, or a --model run's checkpoint (served at /model/). */
interface PageModel {
  task: string;
  seed: number;
  /** the checkpoint's folder as models.json names it ("pretrained" for --model) */
  dir: string;
  url: string;
  taskOptions: Record<string, number>;
  /** whether the folder holds a tokenizer.json: the page then takes text */
  tokenizer: boolean;
  /** step 1's record (accuracy, perplexity), null for a --model checkpoint */
  trained: TrainedModel | null;
  label: string;
}

interface State {
  backend: MI.Backend;
  models: PageModel[];
  saes: SaeRecord[] | null;
  circuits: Circuit[] | null;
  model: MI.MambaLM | null;
  modelIdx: number;
  task: string;
  seed: number;
  /** the sampled sequence (targets and labels) and the ids on show (maybe edited); for text, textBatch of the ids */
  batch: MI.tasks.TaskBatch | null;
  ids: number[];
  /** a language model's text on show (the ids are its tokens) */
  text: string;
  edited: boolean;
  pred: Predictions | null;
  evalBatch: MI.tasks.TaskBatch | null;
  cleanEvalAccuracy: number | null;
  layer: number;
  mode: TemporalMode;
  saeIdx: number;
  sae: { idx: number; sae: MI.sae.Sae } | null;
  ablation: string;
  /** the influence maps of one model and input (key: model index and ids) */
  influence: { key: string; layers: number[][][] } | null;
}

const $ = (id: string) => document.getElementById(id)!;
let state: State;
let queue: Promise<unknown> = Promise.resolve();

/** Runs `fn` after everything queued before it; the body's data-state says when all is done. */
let pending = 0;
function enqueue(fn: () => Promise<void>): Promise<void> {
  pending++;
  document.body.dataset.state = 'busy';
  const next = queue
    .then(fn)
    .catch((e: Error) => showError('main', e))
    .finally(() => {
      if (--pending === 0) document.body.dataset.state = 'ready';
    });
  queue = next;
  return next;
}

function showError(panel: string, e: Error): void {
  document.body.dataset.error = e.message;
  $(panel).append(note(e.message, 'error'));
}

function currentModel(): PageModel {
  return state.models[state.modelIdx];
}

/** The options of `task`: from the chosen model if trained on it, else from any model that was. */
function taskOptions(task: string): Record<string, number> {
  const m = currentModel();
  return m.task === task ? m.taskOptions : state.models.find((x) => x.task === task)!.taskOptions;
}

/** Whether the model on show takes text: it came with a tokenizer. */
function textMode(): boolean {
  return state.model?.tokenizer != null;
}

/** A token string as a table cell shows it: line breaks and tabs made visible. */
function showToken(s: string): string {
  return s.replace(/\n/g, '↵').replace(/\t/g, '⇥');
}

function tokenLabel(tok: number): string {
  if (textMode()) return showToken(state.model!.toStrTokens([tok])[0]);
  const entry = MI.tasks
    .getTask(state.task)
    .vocabulary(taskOptions(state.task) as unknown as MI.tasks.AnyTaskOptions)
    .find((e) => tok >= e.first && tok <= e.last);
  if (!entry || entry.first !== entry.last) return String(tok);
  return entry.name.length <= 3 ? entry.name : entry.name[0];
}

function sample(): void {
  const opts = taskOptions(state.task) as unknown as MI.tasks.AnyTaskOptions;
  const task = MI.tasks.getTask(state.task);
  state.batch = task.generate(opts, new MI.Rng(`explorer/${state.seed}`), 1);
  state.ids = Array.from(state.batch.inputs);
  state.edited = false;
  state.evalBatch = task.generate(opts, new MI.Rng('explorer/eval'), EVAL_SEQUENCES);
  state.cleanEvalAccuracy = null;
}

async function selectModel(idx: number): Promise<void> {
  state.model?.dispose();
  state.model = null;
  state.sae?.sae.dispose();
  state.sae = null;
  state.modelIdx = idx;
  state.task = currentModel().task;
  state.saeIdx = 0;
  state.ablation = defaultAblation();
  $('status').textContent = `loading ${currentModel().dir} ...`;
  state.model = await loadModel(currentModel().url, state.backend, currentModel().tokenizer);
  state.layer = Math.min(state.layer, state.model.config.num_hidden_layers - 1);
  if (textMode()) {
    // the text stays when switching between language models, cut to the new one's context
    const ids = state.model.toTokens(state.text || DEFAULT_TEXT)[0];
    setText(ids.length > maxTokens() ? state.model.toString(ids.slice(0, maxTokens())) : state.text || DEFAULT_TEXT);
  } else sample();
  renderControls();
  await runAll();
}

/** The longest text a language model takes here: the length it was trained (or studied) at. */
function maxTokens(): number {
  return currentModel().taskOptions.seqLen;
}

function contextWhy(): string {
  return currentModel().trained ? 'the length it was trained at' : 'the length the run studied it at';
}

function setText(text: string): void {
  state.text = text;
  state.ids = state.model!.toTokens(text)[0];
  state.batch = textBatch(state.ids);
  state.edited = false;
  state.evalBatch = null;
  state.cleanEvalAccuracy = null;
}

function modelSaes(): SaeRecord[] {
  const m = currentModel();
  return (state.saes ?? []).filter((r) => r.task === m.task && r.seed === m.seed);
}

function modelCircuits(): Circuit[] {
  const m = currentModel();
  return (state.circuits ?? []).filter((c) => c.task === m.task && c.seed === m.seed);
}

function defaultAblation(): string {
  return modelCircuits().length ? 'circuit:0' : 'custom';
}

function renderControls(): void {
  const m = currentModel();
  const tasks = [...new Set(state.models.map((x) => x.task))];
  const controls = $('controls');
  const modelSelect = h(
    'label',
    {},
    'model ',
    select(
      state.models.map((x, i) => [String(i), x.label]),
      String(state.modelIdx),
      (v) => enqueue(() => selectModel(Number(v))),
      { id: 'model' },
    ),
  );
  if (textMode()) {
    controls.replaceChildren(modelSelect);
    const box = h('textarea', { id: 'text', rows: 2, spellcheck: false });
    box.value = state.text;
    const tok = state.model!.tokenizer!;
    $('input').replaceChildren(
      h('div', { class: 'row' }, box, h('button', { id: 'run', onclick: () => void runText() }, 'run')),
      h('p', { id: 'input-note', class: 'note' }, textNote()),
      note(
        `text, tokenised in the page by ${tok.source.replace(/^.*\/run\//, 'run/')} (${tok.vocabSize} tokens); ` +
          `up to ${maxTokens()} tokens, ${contextWhy()}`,
      ),
    );
    return;
  }
  controls.replaceChildren(
    modelSelect,
    h(
      'label',
      {},
      'task ',
      select(
        tasks.map((t) => [t, t]),
        state.task,
        (v) =>
          enqueue(async () => {
            state.task = v;
            sample();
            renderControls();
            await runAll();
          }),
        { id: 'task' },
      ),
    ),
    h('label', {}, 'sample seed ', h('input', { id: 'seed', type: 'number', value: state.seed, min: 0, style: 'width:5em' })),
    h(
      'button',
      {
        id: 'sample',
        onclick: () =>
          enqueue(async () => {
            state.seed = Number(($('seed') as HTMLInputElement).value) || 0;
            sample();
            renderControls();
            await runAll();
          }),
      },
      'sample',
    ),
  );
  const tokens = h('textarea', { id: 'tokens', rows: 2, spellcheck: false });
  tokens.value = state.ids.join(' ');
  $('input').replaceChildren(
    h('div', { class: 'row' }, tokens, h('button', { id: 'run', onclick: () => enqueue(runEdited) }, 'run')),
    note(`token ids, space-separated (vocabulary of ${m.dir}: 0..${state.model!.config.vocab_size - 1}; ${describeVocab()})`),
  );
}

function describeVocab(): string {
  return MI.tasks
    .getTask(state.task)
    .vocabulary(taskOptions(state.task) as unknown as MI.tasks.AnyTaskOptions)
    .map((e) => `${e.name} ${e.first === e.last ? e.first : `${e.first}-${e.last}`}`)
    .join(', ');
}

function textNote(): string {
  return `${state.ids.length} tokens: ${state
    .model!.toStrTokens(state.ids)
    .map((s) => JSON.stringify(s))
    .join(' ')}`;
}

/**
 * The text typed into the box, tokenised and run; a text that gives no tokens or more than the
 * model's context is refused with a note under the box (the panels keep the last result).
 */
function runText(): Promise<void> {
  const text = ($('text') as HTMLTextAreaElement).value;
  const ids = state.model!.toTokens(text)[0];
  const bad = !ids.length
    ? 'input: the text has no tokens; type some words'
    : ids.length > maxTokens()
      ? `input: ${ids.length} tokens, more than this model's context of ${maxTokens()} (${contextWhy()}); shorten the text`
      : null;
  const noteEl = $('input-note');
  if (bad) {
    noteEl.className = 'error';
    noteEl.textContent = bad;
    return Promise.resolve();
  }
  return enqueue(async () => {
    setText(text);
    noteEl.className = 'note';
    noteEl.textContent = textNote();
    await runAll();
  });
}

async function runEdited(): Promise<void> {
  const text = ($('tokens') as HTMLTextAreaElement).value.trim();
  const ids = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  const V = state.model!.config.vocab_size;
  const bad = ids.find((v) => !Number.isInteger(v) || v < 0 || v >= V);
  $('main')
    .querySelectorAll('.error')
    .forEach((e) => e.remove());
  if (!ids.length || bad !== undefined)
    throw new Error(`input: ${bad === undefined ? 'no tokens' : `'${bad}' is not a token id in [0, ${V})`}`);
  if (ids.length !== state.batch!.shape[1]) {
    // targets and labels come from the sampled sequence, so the length must stay the same
    throw new Error(`input: ${ids.length} tokens; keep the sampled length ${state.batch!.shape[1]} (or change the seed and sample)`);
  }
  state.ids = ids;
  state.edited = ids.some((v, i) => v !== state.batch!.inputs[i]);
  await runAll();
}

/** The sampled batch with the edited ids (targets and labels stay the sampled sequence's). */
function shownBatch(): MI.tasks.TaskBatch {
  return { ...state.batch!, inputs: Int32Array.from(state.ids) };
}

async function runAll(): Promise<void> {
  const t0 = performance.now();
  $('status').textContent = `computing on ${currentModel().dir} ...`;
  for (const id of ['predictions', 'temporal', 'sae', 'ablation']) $(id).replaceChildren(h('p', { class: 'note' }, 'computing ...'));
  state.pred = await predict(state.model!, state.ids);
  if (state.evalBatch && state.cleanEvalAccuracy === null) {
    const b = state.evalBatch!;
    state.cleanEvalAccuracy = batchAccuracy(b, await runLogits(state.model!, rows(b)), state.model!.config.vocab_size);
  }
  renderPredictions();
  for (const [panel, fn] of [
    ['temporal', renderTemporal],
    ['sae', renderSae],
    ['ablation', renderAblation],
  ] as const) {
    try {
      await fn();
    } catch (e) {
      $(panel).replaceChildren(note((e as Error).message, 'error'));
    }
  }
  $('status').textContent =
    `${currentModel().dir} on ${textMode() ? 'the text' : state.task}: computed in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

function rows(b: MI.tasks.TaskBatch): number[][] {
  const [B, T] = b.shape;
  return Array.from({ length: B }, (_, i) => Array.from(b.inputs.subarray(i * T, (i + 1) * T)));
}

function scored(pred: number[]): { hits: number; n: number } {
  let hits = 0,
    n = 0;
  state.batch!.targets.forEach((t, i) => {
    if (t !== IGNORE) {
      n++;
      if (pred[i] === t) hits++;
    }
  });
  return { hits, n };
}

/** One table row per quantity, one column per position; scored cells green (right) or red (wrong). */
function positionTable(rowsSpec: [string, (t: number) => string, (t: number) => string][]): HTMLTableElement {
  const T = state.ids.length;
  const table = h('table', { class: 'positions' });
  for (const [name, text, cls] of rowsSpec) {
    const tr = h('tr', {}, h('th', {}, name));
    for (let t = 0; t < T; t++) tr.append(h('td', { class: cls(t) }, text(t)));
    table.append(tr);
  }
  return table;
}

/** A language model on free text: the text's tokens, its next token's probability, and the top next tokens. */
function renderTextPredictions(): void {
  const p = state.pred!,
    T = state.ids.length;
  const top = Array.from({ length: T }, (_, t) => topTokens(p, t, TOP_NEXT));
  const next = (t: number) => (t + 1 < T ? state.ids[t + 1] : null);
  const logPNext = Array.from({ length: T - 1 }, (_, t) => logProb(p, t, state.ids[t + 1]));
  const meanLogP = logPNext.reduce((a, b) => a + b, 0) / Math.max(logPNext.length, 1);
  const rowsSpec: [string, (t: number) => string, (t: number) => string][] = [
    ['pos', (t) => String(t), () => 'pos'],
    ['input', (t) => tokenLabel(state.ids[t]), () => 'tok'],
    ['next', (t) => (next(t) === null ? '' : tokenLabel(next(t)!)), (t) => (next(t) !== null && next(t) === top[t][0].token ? 'hit' : '')],
    ['p(next)', (t) => (next(t) === null ? '' : Math.exp(logPNext[t]).toFixed(2)), () => 'small'],
  ];
  for (let k = 0; k < TOP_NEXT; k++)
    rowsSpec.push(
      [`top ${k + 1}`, (t) => tokenLabel(top[t][k].token), () => `tok top${k}`],
      [`p`, (t) => top[t][k].prob.toFixed(2), () => 'small'],
    );
  $('predictions').replaceChildren(
    positionTable(rowsSpec),
    h(
      'p',
      { id: 'accuracy' },
      `per-task accuracy does not apply: a language model on free text has no task targets. Shown: its top ${TOP_NEXT} next tokens at each ` +
        `position with their probabilities, and the probability it gives the text's own next token (green where that is its top one)` +
        (logPNext.length
          ? `; over the ${logPNext.length} positions that have one: mean log-probability ${meanLogP.toFixed(3)}, perplexity ${Math.exp(-meanLogP).toFixed(1)}`
          : ''),
    ),
  );
}

function renderPredictions(): void {
  if (textMode()) {
    renderTextPredictions();
    return;
  }
  const p = state.pred!,
    targets = state.batch!.targets;
  const verdict = (pred: number[]) => (t: number) => (targets[t] === IGNORE ? '' : pred[t] === targets[t] ? 'hit' : 'miss');
  const { hits, n } = scored(p.predicted);
  const m = currentModel();
  $('predictions').replaceChildren(
    positionTable([
      ['pos', (t) => String(t), () => 'pos'],
      ['input', (t) => tokenLabel(state.ids[t]), (t) => (state.ids[t] !== state.batch!.inputs[t] ? 'edited' : '')],
      ['target', (t) => (targets[t] === IGNORE ? '' : tokenLabel(targets[t])), () => ''],
      ['predicted', (t) => tokenLabel(p.predicted[t]), verdict(p.predicted)],
      ['p', (t) => p.prob[t].toFixed(2), () => 'small'],
    ]),
    h(
      'p',
      { id: 'accuracy' },
      `scored accuracy on this sequence: ${hits}/${n}; on ${EVAL_SEQUENCES} sampled sequences: ${state.cleanEvalAccuracy!.toFixed(3)}` +
        (m.task !== state.task
          ? ` (model trained on ${m.task}: its vocabulary and positions may mean other things here)`
          : m.trained
            ? ` (training run's held-out accuracy ${m.trained.accuracy.toFixed(3)}, chance ${m.trained.chance.toFixed(3)})`
            : ` (a --model checkpoint: no training run's accuracy to compare)`),
    ),
    ...(state.edited ? [note('edited input: the targets and labels are still those of the sampled sequence')] : []),
  );
}

async function renderTemporal(): Promise<void> {
  const L = state.model!.config.num_hidden_layers;
  let map: number[][];
  if (state.mode === 'hidden-attention') map = await hiddenAttentionMap(state.model!, state.ids, state.layer);
  else {
    const key = `${state.modelIdx}:${state.ids.join(' ')}`;
    if (state.influence?.key !== key) state.influence = { key, layers: await influenceMaps(state.model!, state.ids) };
    map = state.influence.layers[state.layer];
  }
  const labels = state.ids.map(tokenLabel);
  $('temporal').replaceChildren(
    h(
      'div',
      { class: 'row' },
      h(
        'label',
        {},
        'layer ',
        select(
          Array.from({ length: L }, (_, i) => [String(i), String(i)]),
          String(state.layer),
          (v) =>
            enqueue(async () => {
              state.layer = Number(v);
              await renderTemporal();
            }),
          { id: 'layer' },
        ),
      ),
      h(
        'label',
        {},
        'map ',
        select(
          [
            ['hidden-attention', 'hidden attention (mean |α| over channels)'],
            ['influence', 'influence ‖∂resid_post[t]/∂embed[s]‖ (Jacobian, slow)'],
          ],
          state.mode,
          (v) =>
            enqueue(async () => {
              state.mode = v as TemporalMode;
              await renderTemporal();
            }),
          { id: 'mode' },
        ),
      ),
    ),
    heatMap(map, labels, { rowTitle: 'output position t', colTitle: 'input position s' }),
  );
}

async function renderSae(): Promise<void> {
  if (state.saes === null) {
    $('sae').replaceChildren(note('no step-03-sae/saes.json in this run (step 3 has not run): no SAEs to show', 'missing'));
    return;
  }
  const recs = modelSaes();
  if (!recs.length) {
    $('sae').replaceChildren(note(`step 3 trained no SAE for ${currentModel().dir}`, 'missing'));
    return;
  }
  if (state.sae?.idx !== state.saeIdx) {
    state.sae?.sae.dispose();
    state.sae = { idx: state.saeIdx, sae: await loadSae(recs[state.saeIdx], state.backend) };
  }
  const rec = recs[state.saeIdx];
  const hits = await topLatents(state.model!, state.sae.sae, rec.hook, state.ids, TOP_LATENTS);
  let max = 0;
  for (const row of hits) for (const x of row) max = Math.max(max, x.value);
  const named = new Map<number, string>();
  for (const [label, tops] of Object.entries(rec.topLatents ?? {}))
    for (const t of tops.slice(0, 2)) if (!named.has(t.latent)) named.set(t.latent, `${label} (r=${t.r.toFixed(2)})`);
  // one row per position (beside the temporal map's rows), each latent cell shaded by its
  // activation relative to the largest on the sequence
  const table = h(
    'table',
    { class: 'latents' },
    h(
      'tr',
      {},
      h('th', {}, 'pos'),
      h('th', {}, 'input'),
      ...Array.from({ length: TOP_LATENTS }, (_, k) => h('th', {}, `#${k + 1} latent · act`)),
    ),
  );
  hits.forEach((row, t) => {
    const tr = h('tr', {}, h('td', { class: 'pos' }, String(t)), h('td', {}, tokenLabel(state.ids[t])));
    for (let k = 0; k < TOP_LATENTS; k++) {
      const x = row[k];
      const td = h('td', { class: 'latent lat' }, x ? `${x.latent} · ${x.value.toFixed(2)}` : '');
      if (x) {
        td.style.background = heatColor(max > 0 ? x.value / max : 0);
        if (x.value / max > 0.6) td.style.color = 'white';
        td.title = `latent ${x.latent}: ${x.value.toPrecision(3)}${named.has(x.latent) ? ` (tracks ${named.get(x.latent)})` : ''}`;
        if (named.has(x.latent)) td.textContent += ' *';
      }
      tr.append(td);
    }
    table.append(tr);
  });
  $('sae').replaceChildren(
    h(
      'label',
      {},
      'SAE ',
      select(
        recs.map((r, i) => [String(i), `${r.hook} · ${r.kind} · ${r.latents} latents (L0 ${r.l0.toFixed(1)}, FVU ${r.fvu.toFixed(2)})`]),
        String(state.saeIdx),
        (v) =>
          enqueue(async () => {
            state.saeIdx = Number(v);
            await renderSae();
          }),
        { id: 'sae-select' },
      ),
    ),
    table,
    ...(named.size ? [note(`* latents that track task variables (step 3): ${[...named].map(([l, s]) => `${l}: ${s}`).join('; ')}`)] : []),
  );
}

/** The ablation the panel shows: a circuit, one of its random controls, or the typed channels. */
function ablationSite(): { site: AblationSite; what: string } {
  if (state.ablation.startsWith('circuit:')) {
    const [, i, k] = state.ablation.split(':');
    const c = modelCircuits()[Number(i)];
    const ctl = k === undefined ? null : c.controls[Number(k)];
    const site = {
      hook: c.hook,
      channels: ctl ? ctl.channels : c.channels,
      directions: ctl ? ctl.directions : c.directions,
      positions: c.positions,
    };
    return { site, what: `${c.id}${ctl ? ` (random control ${Number(k) + 1})` : ''}` };
  }
  const hook = ($('abl-hook') as HTMLSelectElement | null)?.value ?? `blocks.0.mixer.hook_ssm_out`;
  const dim = MI.patching.hookDim(state.model!, hook);
  const positions = (($('abl-positions') as HTMLSelectElement | null)?.value ?? 'scored') as 'scored' | 'all';
  const channels = parseChannels(($('abl-channels') as HTMLInputElement | null)?.value ?? '0-3', dim);
  return { site: { hook, channels, positions }, what: `${hook} channels ${channels.join(',')}` };
}

function describePositions(p: Circuit['positions']): string {
  return typeof p === 'string'
    ? p
    : Array.isArray(p)
      ? p.join(',')
      : `${p.label}${p.offset ? `${p.offset > 0 ? '+' : ''}${p.offset}` : ''}`;
}

async function renderAblation(): Promise<void> {
  const circuits = modelCircuits();
  const options: [string, string][] = [];
  circuits.forEach((c, i) => {
    const dims = c.directions?.length ? `${c.directions.length}-dim subspace` : `${c.channels.length} channels`;
    options.push([`circuit:${i}`, `${c.id}: ${c.hook}, ${dims} at ${describePositions(c.positions)} (${c.source})`]);
    if (c.controls.length) options.push([`circuit:${i}:0`, `  random control of ${c.id}`]);
  });
  options.push(['custom', 'channels typed below']);
  const prev = {
    hook: ($('abl-hook') as HTMLSelectElement | null)?.value,
    channels: ($('abl-channels') as HTMLInputElement | null)?.value,
    positions: ($('abl-positions') as HTMLSelectElement | null)?.value,
  };
  const hooks = state.model!.hookNames().filter((n) => n !== 'hook_logits' && !n.endsWith('hook_h'));
  const custom = h(
    'div',
    { class: 'row', style: state.ablation === 'custom' ? '' : 'display:none' },
    h(
      'label',
      {},
      'hook ',
      select(
        hooks.map((n) => [n, n]),
        prev.hook ?? 'blocks.0.mixer.hook_ssm_out',
        () => undefined,
        { id: 'abl-hook' },
      ),
    ),
    h('label', {}, 'channels ', h('input', { id: 'abl-channels', value: prev.channels ?? '0-7', style: 'width:10em' })),
    h(
      'label',
      {},
      'positions ',
      select(
        [
          ['scored', textMode() ? 'all but the last (those with a next token)' : 'scored'],
          ['all', 'all'],
        ],
        prev.positions ?? 'scored',
        () => undefined,
        { id: 'abl-positions' },
      ),
    ),
    h('button', { id: 'ablate', onclick: () => enqueue(renderAblation) }, 'ablate'),
  );
  const head = h(
    'div',
    {},
    circuits.length
      ? null
      : note(
          state.circuits === null
            ? 'no step-05-circuits/circuits.json in this run (step 5 has not run): type a channel set instead'
            : `step 5 found no circuit for ${currentModel().dir}: type a channel set instead`,
          'missing',
        ),
    h(
      'label',
      {},
      'zero-ablate ',
      select(
        options,
        state.ablation,
        (v) =>
          enqueue(async () => {
            state.ablation = v;
            await renderAblation();
          }),
        { id: 'ablation-select' },
      ),
    ),
    custom,
  );
  $('ablation').replaceChildren(head);
  const { site, what } = ablationSite();
  const batch = shownBatch();
  const ablated = await predict(state.model!, state.ids, zeroAblation(site, batch));
  const evalB = state.evalBatch;
  const evalAcc = evalB
    ? batchAccuracy(evalB, await runLogits(state.model!, rows(evalB), zeroAblation(site, evalB)), state.model!.config.vocab_size)
    : null;
  const clean = state.pred!,
    targets = state.batch!.targets;
  // free text: the "target" is the text's own next token, and nothing is scored as right or wrong
  const text = textMode();
  const verdict = (t: number, pred: number[]) => (text || targets[t] === IGNORE ? '' : pred[t] === targets[t] ? 'hit' : 'miss');
  const mask = MI.patching.positionMask(site.positions, batch);
  const s0 = scored(clean.predicted),
    s1 = scored(ablated.predicted);
  // change of the target's log-probability: smaller effects than a flipped argmax show here
  const dTarget = state.ids.map((_, t) => (targets[t] === IGNORE ? 0 : logProb(ablated, t, targets[t]) - logProb(clean, t, targets[t])));
  const nScored = s0.n,
    meanDrop = dTarget.reduce((a, b) => a + b, 0) / Math.max(nScored, 1);
  $('ablation').append(
    positionTable([
      ['pos', (t) => String(t), (t) => (mask[t] ? 'pos ablated-pos' : 'pos')],
      [text ? 'next' : 'target', (t) => (targets[t] === IGNORE ? '' : tokenLabel(targets[t])), () => (text ? 'tok' : '')],
      ['clean', (t) => tokenLabel(clean.predicted[t]), (t) => `${text ? 'tok ' : ''}${verdict(t, clean.predicted)}`],
      [
        'ablated',
        (t) => tokenLabel(ablated.predicted[t]),
        (t) => (ablated.predicted[t] !== clean.predicted[t] ? 'changed ' : '') + (text ? 'tok ' : '') + verdict(t, ablated.predicted),
      ],
      [
        'Δ log p',
        (t) => (targets[t] === IGNORE ? '' : dTarget[t].toFixed(2)),
        (t) => (targets[t] !== IGNORE && dTarget[t] < -0.1 ? 'small drop' : 'small'),
      ],
    ]),
    h(
      'p',
      { id: 'ablation-effect' },
      `zeroing ${what} at the outlined positions: ` +
        (evalAcc === null
          ? ''
          : `scored accuracy on this sequence ${s0.hits}/${s0.n} → ${s1.hits}/${s1.n}; ` +
            `on ${EVAL_SEQUENCES} sampled sequences ${state.cleanEvalAccuracy!.toFixed(3)} → ${evalAcc.toFixed(3)}; `) +
        `${ablated.predicted.filter((v, t) => v !== clean.predicted[t]).length} of ${clean.T} ${text ? 'top next-token ' : ''}predictions changed; ` +
        (text
          ? `mean change of the log-probability of the text's next token ${meanDrop.toFixed(3)} (per-task accuracy does not apply: free text has no task targets)`
          : `mean change of the target's log-probability at the scored positions ${meanDrop.toFixed(3)}`),
    ),
  );
}

/** For tests and the console: the input on show and the logits the page computed for it. */
function snapshot() {
  const m = currentModel();
  return {
    model: { task: m.task, seed: m.seed, dir: m.dir },
    task: state.task,
    ids: [...state.ids],
    /** a language model's text and its tokens as strings (null for token-id input) */
    text: textMode() ? state.text : null,
    strTokens: textMode() ? state.model!.toStrTokens(state.ids) : null,
    /** the top next tokens per position as the page shows them */
    top: textMode() && state.pred ? state.ids.map((_, t) => topTokens(state.pred!, t, TOP_NEXT)) : null,
    logits: Array.from(state.pred?.logits ?? []),
    T: state.pred?.T ?? 0,
    V: state.pred?.V ?? 0,
    backend: $('backend').textContent,
  };
}

async function main(): Promise<void> {
  const force = new URLSearchParams(location.search).get('backend');
  const { backend, adapter, fallbackReason } = await pickBackend(force);
  $('backend').textContent = adapter;
  if (fallbackReason) $('backend').title = `CPU fallback: ${fallbackReason}`;
  if (fallbackReason) $('backend-note').textContent = `(fallback: ${fallbackReason})`;
  const indexRes = await fetch('run-index.json');
  if (!indexRes.ok) throw new Error(`run-index.json answered ${indexRes.status}: ${await indexRes.text()}`);
  const index = (await indexRes.json()) as RunIndex;
  // only the files the run has: a probe for a missing one would show as an error in the console
  const read = <T>(path: string) => (index.present.includes(path) ? fetchRunJson<T>(path) : Promise.resolve(null));
  const [trained, saes, circuits] = await Promise.all([
    index.pretrained ? Promise.resolve(null) : read<TrainedModel[]>('step-01-train/models.json'),
    read<SaeRecord[]>('step-03-sae/saes.json'),
    read<Circuit[]>('step-05-circuits/circuits.json'),
  ]);
  // #sae=<id>&latent=<j>: the feature-dashboard view (scripts/explorer/dashboard.ts) instead of the model panels
  if (wantsDashboard()) {
    window.addEventListener('hashchange', () =>
      wantsDashboard() ? void enqueue(() => renderDashboard($('main'), saes)) : location.reload(),
    );
    $('status').textContent = '';
    await renderDashboard($('main'), saes);
    return;
  }
  window.addEventListener('hashchange', () => wantsDashboard() && location.reload());
  const models: PageModel[] = (trained ?? []).map((m) => ({
    task: m.task,
    seed: m.seed,
    dir: m.dir,
    url: `run/step-01-train/${m.dir}/`,
    taskOptions: m.taskOptions,
    tokenizer: index.tokenizers.includes(m.dir),
    trained: m,
    label:
      `${m.task} · seed ${m.seed} ` +
      (m.perplexity === undefined ? `(held-out accuracy ${m.accuracy.toFixed(2)})` : `(held-out perplexity ${m.perplexity.toFixed(1)})`),
  }));
  const pre = index.pretrained;
  if (pre)
    // the run's study model: the task and seed its SAEs are recorded under (steps/models.ts)
    models.push({
      task: pre.task,
      seed: 0,
      dir: 'pretrained',
      url: 'model/',
      taskOptions: pre.taskOptions,
      tokenizer: pre.tokenizer,
      trained: null,
      label: `${pre.name} (the --model checkpoint; the run studied it on ${pre.task})`,
    });
  if (!models.length) {
    $('status').textContent = '';
    $('main').replaceChildren(
      note(
        'this run has no step-01-train/models.json (step 1 has not run) and no --model checkpoint, so there is no model to explore',
        'missing',
      ),
    );
    return;
  }
  state = {
    backend,
    models,
    saes,
    circuits,
    model: null,
    modelIdx: 0,
    task: models[0].task,
    seed: 0,
    batch: null,
    ids: [],
    text: '',
    edited: false,
    pred: null,
    evalBatch: null,
    cleanEvalAccuracy: null,
    layer: 0,
    mode: 'hidden-attention',
    saeIdx: 0,
    sae: null,
    ablation: 'custom',
    influence: null,
  };
  await selectModel(0);
}

(globalThis as unknown as { explorer: unknown }).explorer = { snapshot };
void enqueue(main);
