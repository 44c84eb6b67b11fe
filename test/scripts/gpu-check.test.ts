// scripts/gpu-check.sh end to end at small shapes (--small) on this machine's adapter (lavapipe in
// CI) into a temp folder: every stage runs and writes its log, summary.tsv lists them all with a
// status and seconds; the WebGPU stages pass; the peers, which need CUDA PyTorch, are skipped with
// the reason and do not fail the script. In --small the suites are a subset (the script's header
// names them). Without an adapter the WebGPU stages are skipped, unless REQUIRE_WEBGPU=1, which
// fails them (and this test). Then --pack with one stage: three files are left. About 1.5 minutes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { probeAdapter } from '../../engine/wgsl/device.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const STAGES = ['probe', 'suites', 'bench-webgpu', 'peer-torch', 'bench-model', 'peer-hf', 'quick-run', 'step1'];
const WEBGPU_STAGES = ['suites', 'bench-webgpu', 'bench-model', 'quick-run', 'step1'];
const tmp = mkdtempSync(join(tmpdir(), 'mi-gpu-check-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

function gpuCheck(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const clean = { ...process.env };
  for (const k of ['OUT', 'GPU_CHECK_STAGES', 'GPU_CHECK_SMALL', 'GPU_CHECK_TOTAL_S']) delete clean[k];
  const r = spawnSync('bash', [join(ROOT, 'scripts/gpu-check.sh'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...clean, NODE_V8_COVERAGE: '', ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

interface Row {
  stage: string;
  status: string;
  seconds: number;
  budget: number;
  note: string;
}

function summary(dir: string): Row[] {
  const [head, ...lines] = readFileSync(join(dir, 'summary.tsv'), 'utf8').trim().split('\n');
  assert.is(head, 'stage\tstatus\tseconds\tbudget_s\tnote');
  return lines.map((l) => {
    const [stage, status, seconds, budget, note] = l.split('\t');
    return { stage, status, seconds: Number(seconds), budget: Number(budget), note: note ?? '' };
  });
}

const here = await probeAdapter().catch(() => null);

test('gpu-check.sh --small: every stage runs with its log, the summary lists them, no CUDA is a skip', () => {
  const out = join(tmp, 'small');
  const t0 = performance.now();
  const r = gpuCheck(['--small', out]);
  const seconds = (performance.now() - t0) / 1000;
  if (!here && process.env.REQUIRE_WEBGPU === '1') {
    assert.is.not(r.code, 0, 'REQUIRE_WEBGPU=1 without an adapter fails the script');
    assert.unreachable(`REQUIRE_WEBGPU=1 but no WebGPU adapter; gpu-check.sh said:\n${r.stdout.slice(-2000)}`);
  }
  assert.is(r.code, 0, `exit code ${r.code} after ${seconds.toFixed(0)} s\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  const rows = summary(out);
  assert.equal(
    rows.map((x) => x.stage),
    STAGES,
  );
  const all = readFileSync(join(out, 'gpu-check.log'), 'utf8');
  for (const row of rows) {
    const log = join(out, 'logs', `${row.stage}.log`);
    assert.ok(existsSync(log), `${row.stage}: its log`);
    assert.ok(readFileSync(log, 'utf8').trim().length > 0, `${row.stage}: a non-empty log`);
    assert.ok(all.includes(`=== ${row.stage} ===`), `${row.stage} in gpu-check.log`);
    assert.ok(row.seconds >= 0 && row.seconds <= row.budget + 6, `${row.stage}: ${row.seconds} s within its budget ${row.budget} s`);
  }
  const by = Object.fromEntries(rows.map((x) => [x.stage, x]));
  const logOf = (s: string) => readFileSync(join(out, 'logs', `${s}.log`), 'utf8');
  assert.is(by.probe.status, 'ok');
  for (const peer of ['peer-torch', 'peer-hf']) {
    const { status, note } = by[peer];
    assert.ok(status === 'ok' || (status === 'skipped' && /no CUDA|not found/.test(note)), `${peer}: ${status} ${note}`);
  }
  if (!here) {
    for (const s of WEBGPU_STAGES) assert.equal([by[s].status, by[s].note], ['skipped', 'no WebGPU adapter']);
    return;
  }
  for (const s of WEBGPU_STAGES) assert.is(by[s].status, 'ok', `${s}: ${by[s].status} ${by[s].note}\n${logOf(s).slice(-1500)}`);
  assert.match(logOf('probe'), here.software ? /"software":true/ : /"software":false/);
  assert.match(logOf('suites'), /\d+ passed, 0 failed/);
  assert.match(logOf('bench-webgpu'), /selective scan bwd +webgpu/);
  assert.match(logOf('bench-model'), /mamba-130m-like .* forward, batch 2 x 64/);
  assert.match(logOf('bench-model'), /recurrent decode step/);
  for (const s of ['bench-webgpu', 'bench-model']) assert.match(logOf(s), /slowest kernels, toy training step|no kernel profile/);
  const quickRun = join(out, 'runs', 'quick-run');
  assert.ok(existsSync(join(quickRun, 'step-02-collect', 'done.json')), 'the quick pipeline reached step 2');
  const setup = JSON.parse(readFileSync(join(quickRun, 'step-00-setup', 'setup.json'), 'utf8'));
  assert.is(setup.backend.name, 'webgpu');
  assert.is(setup.backend.adapter.software, here.software);
  assert.ok(existsSync(join(out, 'runs', 'default-step1', 'step-01-train', 'done.json')), 'step 1 finished');
  assert.match(logOf('step1'), /^\d\d:\d\d:\d\d step {2}1 train/m);
});

test('gpu-check.sh --pack leaves summary.tsv, gpu-check.log and gpu-check.tgz; a bad flag exits 2', () => {
  const out = join(tmp, 'packed');
  const r = gpuCheck(['--small', '--pack', out], { GPU_CHECK_STAGES: 'probe' });
  assert.is(r.code, here || process.env.REQUIRE_WEBGPU !== '1' ? 0 : 1, r.stdout.slice(-2000));
  assert.equal(readdirSync(out).sort(), ['gpu-check.log', 'gpu-check.tgz', 'summary.tsv']);
  const rows = summary(out);
  assert.is(rows.length, STAGES.length);
  for (const row of rows.filter((x) => x.stage !== 'probe')) assert.equal([row.status, row.note], ['skipped', 'not selected']);
  const bad = gpuCheck(['--frobnicate']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /unknown flag --frobnicate/);
});

test.run();
