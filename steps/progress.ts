// The progress line of long work, on stderr. On a terminal it is one line rewritten in place
// ('\r' and clear-line, at most every 100 ms) and ended with a newline when the work is done. In a
// log (stderr not a terminal) it is at most one line per tenth of the work, plus the final one.
// A series of updates is one piece of work: a new one starts when the total changes or the count
// goes back; the label may change within a series (e.g. the model being worked on).
// interp/ reports progress through callbacks only; this is where it is printed.

/** Where the lines go: process.stderr, or a stand-in in tests. */
export interface ProgressSink {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

const BAR_WIDTH = 24;
const TTY_INTERVAL_MS = 100;
const CLEAR_LINE = '\r\x1b[2K';

export function progressLine(label: string, done: number, total: number): string {
  const filled = Math.min(BAR_WIDTH, Math.max(0, Math.round((BAR_WIDTH * done) / Math.max(total, 1))));
  return `  ${label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total}`;
}

export class Progress {
  private total = Number.NaN;
  private done = 0;
  /** the last tenth of the series printed (not a terminal), -1 before the first line */
  private tenth = -1;
  private finished = false;
  private lastWrite = Number.NEGATIVE_INFINITY;
  /** a terminal line was written without its newline */
  private open = false;

  constructor(
    private readonly out: ProgressSink = process.stderr,
    private readonly now: () => number = () => performance.now(),
  ) {}

  update(label: string, done: number, total: number): void {
    if (total !== this.total || done < this.done) {
      this.total = total;
      this.tenth = -1;
      this.finished = false;
    }
    this.done = done;
    if (this.finished) return;
    const finished = done >= total;
    const line = progressLine(label, done, total);
    if (this.out.isTTY) {
      const t = this.now();
      if (!finished && t - this.lastWrite < TTY_INTERVAL_MS) return;
      this.lastWrite = t;
      this.out.write(`${CLEAR_LINE}${line}${finished ? '\n' : ''}`);
      this.open = !finished;
    } else {
      const tenth = Math.floor((10 * done) / total);
      if (!finished && tenth <= this.tenth) return;
      this.tenth = tenth;
      this.out.write(`${line}\n`);
    }
    this.finished = finished;
  }

  /** Ends a terminal line left open (work that stopped before its end), so other output starts on a line of its own. */
  end(): void {
    if (this.open) this.out.write('\n');
    this.open = false;
    this.total = Number.NaN;
    this.done = 0;
  }
}
