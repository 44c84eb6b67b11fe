// Ids of a rendered figure that depend only on the figure. Vega numbers an SVG's definitions
// (gradient_0, clip1) with counters that live for the whole process, so the same spec gets other
// ids when other figures were rendered before it, and figures rendered by different processes (a
// resumed run) share ids with different definitions: inlined together in report.html, a legend
// then paints another figure's colour ramp (issue 17). uniqueSvgIds renames every id after the
// figure's own content instead.

/** Every id defined in `svg`, in order of first appearance. */
export function svgIds(svg: string): string[] {
  return [...new Set(Array.from(svg.matchAll(/\sid="([^"]+)"/g), (m) => m[1]))];
}

/** Every id `svg` refers to: url(#x) (fill, stroke, clip-path, mask, filter), href="#x", xlink:href="#x". */
export function svgRefs(svg: string): string[] {
  return [
    ...Array.from(svg.matchAll(/url\([^)#"']*#([^)"']+)\)/g), (m) => m[1]),
    ...Array.from(svg.matchAll(/href="#([^"]+)"/g), (m) => m[1]),
  ];
}

function renameIds(svg: string, name: (index: number) => string): string {
  const map = new Map(svgIds(svg).map((id, i) => [id, name(i)]));
  const to = (match: string, head: string, id: string, tail: string) => {
    const n = map.get(id);
    return n === undefined ? match : `${head}${n}${tail}`;
  };
  // In a page Vega writes url(<page address>#x): the address stays, the id after it is renamed. A
  // reference to an id the figure does not define is left alone (it is not ours to rename).
  return svg
    .replace(/(\sid=")([^"]+)(")/g, to)
    .replace(/(url\([^)#"']*#)([^)"']+)(\))/g, to)
    .replace(/(href="#)([^"]+)(")/g, to);
}

/** cyrb53 (a public-domain 53-bit string hash) in base 36: short, and no node: import, so a page can use it. */
function hash53(s: string): string {
  let h1 = 0xdeadbeef,
    h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/**
 * `svg` with its ids renumbered in order of appearance and prefixed with a hash of the figure with
 * its ids so numbered (`f<hash>-0`, `f<hash>-1`, ...), every reference rewritten to match. The result
 * depends on what the figure draws and not on what the process rendered before it, two different
 * figures share no id, and applying it again changes nothing (a figure rendered before this existed
 * comes out as if rendered now).
 */
export function uniqueSvgIds(svg: string): string {
  if (!svgIds(svg).length) return svg;
  const prefix = `f${hash53(renameIds(svg, (i) => `id${i}`))}-`;
  return renameIds(svg, (i) => `${prefix}${i}`);
}
