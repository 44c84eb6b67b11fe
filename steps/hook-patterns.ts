// Hook name patterns in the config: "{i}" stands for every layer, "{last}" for the last one.
// They are matched against the hook names a collection actually holds, so a pattern naming a
// hook that step 2 did not collect is an error that lists what it did collect. And the short
// hook names the figures use.

/** The concrete hook names among `available` that `patterns` select, in pattern order. */
export function resolveHooks(patterns: readonly string[], available: readonly string[], who: string): string[] {
  const layers = available
    .map((n) => /^blocks\.(\d+)\./.exec(n))
    .filter((m) => m)
    .map((m) => Number(m![1]));
  const last = layers.length ? Math.max(...layers) : -1;
  const out: string[] = [];
  for (const p of patterns) {
    const re = new RegExp(
      `^${p
        .replace(/[.*+?^$()|[\]\\]/g, '\\$&')
        .replace(/\{last\}/g, String(last))
        .replace(/\{i\}/g, '\\d+')}$`,
    );
    const hits = available.filter((n) => re.test(n));
    if (!hits.length) throw new Error(`${who}: hook pattern "${p}" matches none of the collected hooks (${available.join(', ')})`);
    for (const h of hits) if (!out.includes(h)) out.push(h);
  }
  return out;
}

/** "blocks.1.hook_resid_post" -> "L1 resid_post", for figure labels. */
export function shortHook(hook: string): string {
  return hook
    .replace(/^blocks\.(\d+)\./, 'L$1 ')
    .replace('mixer.', '')
    .replace('hook_', '');
}
