// The browser-test helpers themselves: the static server answers with the right content types and
// refuses anything outside its folder; Chromium launched with webgpu gets an adapter on 127.0.0.1
// (a secure origin) and logs what pages do.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { browserAvailable, launchBrowser, openPage, outsideRequests, serveDir, type StaticServer } from '../helpers/browser.ts';

/** A raw GET (fetch would normalise "/../" away before it reached the server), with another Host header when given. */
function get(server: StaticServer, path: string, hostHeader?: string): Promise<{ status: number; type: string; body: string }> {
  const { port } = new URL(server.origin);
  return new Promise((ok, fail) => {
    const headers = hostHeader ? { host: hostHeader } : {};
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', fail);
    req.end();
  });
}

const Serve = suite('serveDir: static files on 127.0.0.1');
const base = mkdtempSync(join(tmpdir(), 'mi-serve-'));
const root = join(base, 'site');
mkdirSync(join(root, 'sub dir'), { recursive: true });
writeFileSync(join(base, 'secret.txt'), 'outside');
const files: Record<string, string> = {
  'index.html': '<p>home</p>',
  'a.js': 'export {}',
  'b.mjs': 'export {}',
  'c.json': '{}',
  'd.svg': '<svg/>',
  'e.wasm': '\0asm',
  'f.safetensors': '\0\0',
  'sub dir/g.html': '<p>g</p>',
};
for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
symlinkSync(join(base, 'secret.txt'), join(root, 'link.txt'));
let server: StaticServer;
Serve.before(async () => {
  server = await serveDir(root);
});
Serve.after(async () => {
  await server.close();
  rmSync(base, { recursive: true, force: true });
});

Serve('content types by extension, bodies as written, folders give index.html', async () => {
  assert.match(server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const want: Record<string, RegExp> = {
    'index.html': /^text\/html/,
    'a.js': /^text\/javascript/,
    'b.mjs': /^text\/javascript/,
    'c.json': /^application\/json/,
    'd.svg': /^image\/svg\+xml/,
    'e.wasm': /^application\/wasm$/,
    'f.safetensors': /^application\/octet-stream$/,
    'sub dir/g.html': /^text\/html/,
  };
  for (const [name, type] of Object.entries(want)) {
    const r = await get(server, new URL(server.url(name)).pathname);
    assert.is(r.status, 200, name);
    assert.match(r.type, type, name);
    assert.is(r.body, files[name], name);
  }
  assert.is((await get(server, '/')).body, files['index.html']);
});

Serve('paths outside the folder are never served: dot segments stay inside, escapes are 403', async () => {
  const cases: [string, number][] = [
    // the URL parser folds "/../" (also spelt %2e%2e) into the root: a missing file there, not the one outside
    ['/../secret.txt', 404],
    ['/%2e%2e/secret.txt', 404],
    // an encoded slash survives the parser and only becomes ".." after decoding
    ['/sub%20dir/..%2f..%2fsecret.txt', 403],
    ['/..%2fsecret.txt', 403],
    // a symlink inside the folder that points outside it
    ['/link.txt', 403],
  ];
  for (const [path, status] of cases) {
    const r = await get(server, path);
    assert.is(r.status, status, path);
    assert.is.not(r.body, 'outside', `${path} leaked the file`);
  }
  assert.is((await get(server, '/nope.html')).status, 404);
  assert.is((await get(server, '/%zz')).status, 400);
});

Serve('only requests for this server by its local names are answered (no DNS rebinding): another Host is 421', async () => {
  const { port } = new URL(server.origin);
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`])
    assert.is((await get(server, '/c.json', host)).status, 200, host);
  for (const host of [`evil.example:${port}`, 'localhost', `127.0.0.1:${Number(port) + 1}`, `attacker.test`]) {
    const r = await get(server, '/c.json', host);
    assert.is(r.status, 421, host);
    assert.is.not(r.body, files['c.json'], `${host} read the file`);
  }
});

Serve.run();

const skip = !browserAvailable();
const Chromium = suite('headless Chromium with WebGPU');

Chromium('a page on 127.0.0.1 gets a WebGPU adapter; console errors, page errors and requests are logged', async () => {
  if (skip) return;
  const dir = mkdtempSync(join(tmpdir(), 'mi-chromium-page-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title><p>page</p>');
  const site = await serveDir(dir);
  const browser = await launchBrowser({ webgpu: true }).catch(async (e: Error) => {
    await site.close();
    throw e;
  });
  try {
    const url = site.url('index.html');
    const { page, log } = await openPage(browser!, url);
    const adapter = await page.evaluate(async () => {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      if (!gpu) return 'no navigator.gpu';
      return (await gpu.requestAdapter()) ? 'adapter' : 'requestAdapter gave null';
    });
    assert.is(adapter, 'adapter');
    assert.equal(log.requests, [url]);
    // the log must see what a broken page does, or the report test's clean-log asserts mean nothing
    await page.evaluate(() => {
      console.error('boom');
      setTimeout(() => {
        throw new Error('thrown');
      });
      void fetch('http://example.invalid/x').catch(() => {});
    });
    await page.waitForTimeout(200);
    assert.ok(
      log.consoleErrors.some((e) => e.startsWith('boom')),
      `console errors: ${log.consoleErrors}`,
    );
    assert.ok(
      log.pageErrors.some((e) => e.includes('thrown')),
      `page errors: ${log.pageErrors}`,
    );
    assert.equal(outsideRequests(log), ['http://example.invalid/x']);
  } finally {
    await browser!.close();
    await site.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

Chromium.run();
