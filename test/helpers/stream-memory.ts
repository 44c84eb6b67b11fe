// Child process of test/interp/text/stream.test.ts: streams the text file named on the command line
// through tokenWindows (bytes as tokens, so it measures the streaming, not a tokenizer) and a
// 128-window reservoir, and prints {"windows", "seen", "rssGrowth"} as JSON. Run in a fresh Node
// with a small heap limit, so memory that grew with the file would end it with an out-of-memory error.
import { Rng } from '../../engine/random.ts';
import { readTextPieces, sampleWindows, tokenWindows, type TokenWindow } from '../../interp/text/stream.ts';

const file = process.argv[2];
const bytes = { encode: (t: string) => Array.from({ length: t.length }, (_, i) => t.charCodeAt(i) & 255) };
const rss0 = process.memoryUsage().rss;
let peak = rss0,
  n = 0;
async function* watched(): AsyncGenerator<TokenWindow> {
  for await (const w of tokenWindows(readTextPieces([file]), bytes, { contextSize: 256, bos: 0 })) {
    if ((++n & 4095) === 0) peak = Math.max(peak, process.memoryUsage().rss);
    yield w;
  }
}
const r = await sampleWindows(watched(), 128, new Rng(3));
process.stdout.write(`${JSON.stringify({ windows: r.windows.length, seen: r.seenWindows, rssGrowth: peak - rss0 })}\n`);
