// The one error path of every command-line entry point (steps/run.ts, scripts/parity.ts,
// scripts/explore.ts, bench/*.ts): a failure is one line on stderr, `error: <message>`, and exit
// code 1, or 2 for a usage error (a bad flag or argument); no stack trace unless MI_DEBUG=1. The
// messages that the loaders and checks throw already name the file, tensor or field; a stack
// trace would only bury that line. Lives in steps/ so that steps/run.ts can import it too.
//   runMain(async () => { ...; return exitCode; })

/** A bad command line: exit code 2, and the message should say the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Node's parseArgs errors (unknown option, missing value, stray positional) are usage errors too. */
function isUsageError(e: unknown): boolean {
  if (e instanceof UsageError) return true;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/** The message as one line: a multi-line message's lines joined with "; ". */
export function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join('; ');
}

/**
 * Reports `e` as `error: <message>` on stderr (with the stack first when MI_DEBUG=1) and ends the
 * process with 2 for a usage error, else 1.
 */
export function exitWithError(e: unknown): never {
  if (process.env.MI_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  // An error no check of ours threw (a TypeError in our own code, say) still gets one line, and a
  // hint where to look.
  const usage = isUsageError(e);
  const internal = !usage && (e instanceof TypeError || e instanceof ReferenceError);
  const hint = internal && process.env.MI_DEBUG !== '1' ? ' (an internal error: MI_DEBUG=1 shows the stack)' : '';
  process.stderr.write(`error: ${oneLine(e)}${hint}\n`);
  process.exit(usage ? 2 : 1);
}

/**
 * Runs `main`; a number it returns becomes the exit code (process.exitCode, so a server it started
 * keeps running). A throw or rejection, here or later in an event handler or a promise nobody
 * awaited, goes through exitWithError.
 */
export async function runMain(main: () => Promise<number | undefined> | number | undefined): Promise<void> {
  reportErrorsAsOneLine();
  try {
    const code = await main();
    if (typeof code === 'number') process.exitCode = code;
  } catch (e) {
    exitWithError(e);
  }
}

let installed = false;

/**
 * For a script whose body runs at module level (bench/*.ts): from here on, an uncaught throw
 * (a rejected top-level await included) or an unhandled rejection goes through exitWithError.
 */
export function reportErrorsAsOneLine(): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtException', exitWithError);
  process.on('unhandledRejection', exitWithError);
}
