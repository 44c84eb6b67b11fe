// Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core (never a
// downloaded browser), a static file server on 127.0.0.1, and pages that record what went wrong.
// Where /usr/bin/chromium is missing, launchBrowser gives null and the suite skips after one line;
// with REQUIRE_BROWSER=1 (CI) that is an error instead.
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import * as assert from 'uvu/assert';
import { listenLocal, readOnlyPath, sendFileInside } from '../../scripts/static-files.ts';

export const CHROMIUM_PATH = '/usr/bin/chromium';

// Verified on these machines: running as root needs --no-sandbox; the rest keep Chromium from
// phoning home, so a test can assert "no request outside 127.0.0.1" about the page alone.
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  /** Closes Chromium and removes its user-data-dir. */
  close(): Promise<void>;
}

/** Whether browser suites can run here; throws under REQUIRE_BROWSER=1 when they cannot. */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  if (process.env.REQUIRE_BROWSER === '1') {
    throw new Error(`REQUIRE_BROWSER=1 but ${CHROMIUM_PATH} is missing (run scripts/setup-chromium.sh)`);
  }
  console.log(
    `browser: no ${CHROMIUM_PATH}; browser suites skip (bash scripts/setup-chromium.sh installs it; REQUIRE_BROWSER=1 fails instead)`,
  );
  return false;
}

/**
 * Launches headless Chromium with a fresh user-data-dir in a temp folder, or returns null where
 * there is no Chromium (see browserAvailable). `webgpu` turns on WebGPU (SwiftShader); pages must
 * then come from a secure origin such as http://127.0.0.1, not file://.
 */
export async function launchBrowser(opts: { webgpu?: boolean } = {}): Promise<TestBrowser | null> {
  if (!browserAvailable()) return null;
  const userDataDir = mkdtempSync(join(tmpdir(), 'mi-chromium-'));
  let context: BrowserContext;
  try {
    // A persistent context is the only way to choose the user-data-dir with playwright-core.
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...FLAGS, ...(opts.webgpu ? ['--enable-unsafe-webgpu'] : [])],
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(`launchBrowser: ${CHROMIUM_PATH} failed to start: ${(e as Error).message}`);
  }
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
}

export interface StaticServer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash) */
  origin: string;
  /** origin + '/' + relative path, each segment URL-encoded */
  url(relPath: string): string;
  close(): Promise<void>;
}

/** Serves `dir` read-only on 127.0.0.1 at a random free port. Paths outside `dir` get 403. */
export async function serveDir(dir: string): Promise<StaticServer> {
  const root = realpathSync(resolve(dir));
  const server: Server = createServer((req, res) => {
    const rel = readOnlyPath(req, res);
    if (rel !== null) sendFileInside(req, res, root, rel, { what: 'the served folder', index: true });
  });
  const { origin, close } = await listenLocal(server, 0, 'serveDir');
  return {
    origin,
    url: (relPath) => `${origin}/${relPath.split('/').map(encodeURIComponent).join('/')}`,
    close,
  };
}

export interface PageLog {
  /** console messages of type error (and their location) */
  consoleErrors: string[];
  consoleWarnings: string[];
  /** uncaught exceptions in the page */
  pageErrors: string[];
  /** every request the page made, in order, including the page itself */
  requests: string[];
  failedRequests: string[];
}

/** Opens `url` in a new page and waits for load; the log keeps filling while the page lives. */
export async function openPage(browser: TestBrowser, url: string): Promise<{ page: Page; log: PageLog }> {
  const log: PageLog = { consoleErrors: [], consoleWarnings: [], pageErrors: [], requests: [], failedRequests: [] };
  const page = await browser.context.newPage();
  page.on('console', (m) => {
    const where = m.location().url ? ` (${m.location().url}:${m.location().lineNumber})` : '';
    if (m.type() === 'error') log.consoleErrors.push(m.text() + where);
    else if (m.type() === 'warning') log.consoleWarnings.push(m.text() + where);
  });
  page.on('pageerror', (e) => log.pageErrors.push(e.stack ?? e.message));
  page.on('request', (r) => log.requests.push(r.url()));
  page.on('requestfailed', (r) => log.failedRequests.push(`${r.url()}: ${r.failure()?.errorText ?? 'failed'}`));
  const response = await page.goto(url, { waitUntil: 'load' });
  if (!response?.ok()) throw new Error(`openPage: ${url} answered ${response?.status() ?? 'nothing'}`);
  return { page, log };
}

/** The page logged no console error or uncaught exception, every request succeeded, none left 127.0.0.1. */
export function assertQuietPage(log: PageLog): void {
  assert.equal(log.consoleErrors, [], 'console errors');
  assert.equal(log.pageErrors, [], 'uncaught page errors');
  assert.equal(log.failedRequests, [], 'failed requests');
  assert.equal(outsideRequests(log), [], 'requests outside 127.0.0.1');
}

/** Waits until a page sets body[data-state=ready], then asserts it reported no error (body[data-error]). */
export async function waitReady(p: Page, timeoutMs: number): Promise<void> {
  await p.waitForFunction(() => document.body.dataset.state === 'ready', undefined, { timeout: timeoutMs });
  const error = await p.evaluate(() => document.body.dataset.error ?? null);
  assert.is(error, null, `the page reported an error: ${error}`);
}

/** The page's logits within 1e-5 of the largest magnitude of Node's; a NaN in the page's is a failure. */
export function assertLogitsClose(got: readonly number[], want: ArrayLike<number>, what: string): void {
  assert.is(got.length, want.length, `${what}: ${got.length} values, Node: ${want.length}`);
  let err = 0,
    scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(scale > 0, 'Node logits are all zero');
  assert.ok(err <= 1e-5 * scale, `${what} vs Node CPU: max error ${err} > 1e-5 * ${scale}`);
}

/** Requests whose host is not 127.0.0.1 (data: and about: URLs never leave the page). */
export function outsideRequests(log: PageLog): string[] {
  return log.requests.filter((u) => {
    if (u.startsWith('data:') || u.startsWith('about:') || u.startsWith('blob:')) return false;
    try {
      return new URL(u).hostname !== '127.0.0.1';
    } catch {
      return true;
    }
  });
}
