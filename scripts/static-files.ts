// Serving files of one folder read-only over HTTP on 127.0.0.1: the explorer's run directory and
// the browser tests' pages share this, so both refuse the same escapes (dot segments, symlinks).
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.map': 'application/json',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

export function sendText(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/**
 * Whether the request names this server as its host: 127.0.0.1, localhost or [::1] with the port it
 * arrived on. A page of another site that rebinds its DNS name to 127.0.0.1 sends its own name, so
 * this keeps such pages from reading the files served here.
 */
export function localHost(req: IncomingMessage): boolean {
  const port = req.socket.localPort;
  const host = (req.headers.host ?? '').toLowerCase();
  return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host);
}

/**
 * The decoded URL path of a GET or HEAD request. Any other request is answered here (421 for a Host
 * that is not this server on 127.0.0.1, 405 for another method, 400 for a path that does not decode)
 * and gives null: the servers here only read, and only for pages of their own origin.
 */
export function readOnlyPath(req: IncomingMessage, res: ServerResponse): string | null {
  if (!localHost(req)) {
    sendText(res, 421, 'this server answers only requests for 127.0.0.1, localhost or [::1] at its own port');
    return null;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'method not allowed');
    return null;
  }
  try {
    return decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  } catch {
    sendText(res, 400, 'bad path');
    return null;
  }
}

/**
 * Starts `server` on 127.0.0.1 at `port` (0: any free port) and gives its origin (e.g.
 * http://127.0.0.1:4173) and a close() that also drops open connections. `who` begins the error.
 */
export async function listenLocal(server: Server, port: number, who: string): Promise<{ origin: string; close(): Promise<void> }> {
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`${who}: server has no TCP address`);
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/**
 * Answers a GET or HEAD for `rel` (a decoded URL path) with the file of that name inside `root` (an
 * already resolved real path): 403 for anything outside it, also through a symlink; 404 when
 * missing; a folder gives its index.html when `index` is set. `what` names the folder in messages.
 */
export function sendFileInside(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  rel: string,
  opts: { what: string; index?: boolean },
): void {
  const inside = (f: string) => f === root || f.startsWith(root + sep);
  let file = resolve(root, `.${rel}`);
  if (!inside(file)) {
    sendText(res, 403, `outside ${opts.what}`);
    return;
  }
  if (!existsSync(file)) {
    sendText(res, 404, `not in ${opts.what}: ${rel}`);
    return;
  }
  file = realpathSync(file); // a symlink inside may point outside
  if (!inside(file)) {
    sendText(res, 403, `outside ${opts.what}`);
    return;
  }
  if (opts.index && statSync(file).isDirectory()) file = join(file, 'index.html');
  if (!existsSync(file) || !statSync(file).isFile()) {
    sendText(res, 404, `not a file of ${opts.what}: ${rel}`);
    return;
  }
  const headers = {
    'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': statSync(file).size,
    'cache-control': 'no-store',
  };
  if (req.method === 'HEAD') {
    res.writeHead(200, headers);
    res.end();
    return;
  }
  // the headers go out once the file is open, so an unreadable file is a 403, not a crash of the server
  const stream = createReadStream(file);
  stream.once('open', () => {
    res.writeHead(200, headers);
    stream.pipe(res);
  });
  stream.once('error', (e: NodeJS.ErrnoException) => {
    if (res.headersSent) res.destroy(e);
    else sendText(res, e.code === 'EACCES' || e.code === 'EPERM' ? 403 : 500, `cannot read ${rel} (${e.code ?? e.message})`);
  });
}
