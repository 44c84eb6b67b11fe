// Reverse-mode autograd. Ops record a GradNode on their outputs when gradients are enabled and an
// input requires them; backward() orders the nodes reachable from a root topologically and pulls
// cotangents back through each node's rule once, accumulating where a tensor is used twice.
import { isGradEnabled, keep, noGrad } from '../runtime.ts';
import { shapeStr, sameShape } from '../shape.ts';
import { isFloat } from '../dtype.ts';
import type { GradNode, Tensor } from '../tensor.ts';

// The ops backward rules need; injected by engine/ops to avoid an import cycle.
export interface GradOps {
  add(a: Tensor, b: Tensor): Tensor;
  onesLike(t: Tensor): Tensor;
}
let ops: GradOps | null = null;
export function setGradOps(o: GradOps): void {
  ops = o;
}

/**
 * Records `outputs` as made by `op` from `inputs`, if any input requires a gradient. `backward`
 * receives one cotangent per output (null where none flowed) and returns one per input.
 */
export function record(op: string, inputs: readonly Tensor[], outputs: readonly Tensor[], backward: GradNode['backward']): void {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return;
  const node: GradNode = { op, inputs, backward, nOut: outputs.length };
  outputs.forEach((t, i) => {
    if (!isFloat(t.dtype)) return;
    t.node = node;
    t.outIndex = i;
    t.requiresGrad = true;
  });
}

function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  // iterative DFS (post-order) so deep graphs (long unrolled loops) do not overflow the stack
  const stack: [GradNode, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const child = node.inputs[i].node;
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

function accumulate(prev: Tensor | undefined, g: Tensor): Tensor {
  if (!prev) return g;
  const sum = ops!.add(prev, g);
  prev.dispose();
  g.dispose();
  return sum;
}

/**
 * Pulls the cotangent `seed` of `root` back to every leaf that requires a gradient. Returns the
 * leaf gradients; intermediate cotangents are disposed as soon as they have been used.
 */
export function backwardFrom(root: Tensor, seed?: Tensor): Map<Tensor, Tensor> {
  const leafGrads = new Map<Tensor, Tensor>();
  if (!ops) throw new Error('autograd: engine/ops not loaded');
  let ownSeed: Tensor | null = null;
  if (!seed) {
    if (root.size !== 1) throw new Error(`backward: output of shape ${shapeStr(root.shape)} is not a scalar; pass a cotangent`);
    seed = ownSeed = noGrad(() => ops!.onesLike(root));
  } else if (!sameShape(seed.shape, root.shape)) {
    throw new Error(`backward: cotangent ${shapeStr(seed.shape)} does not match output ${shapeStr(root.shape)}`);
  }
  if (!root.requiresGrad) throw new Error('backward: the output does not depend on any tensor that requires a gradient');
  if (!root.node) {
    leafGrads.set(root, seed === ownSeed ? seed : seed.view(seed.shape));
    return leafGrads;
  }

  const pending = new Map<GradNode, (Tensor | undefined)[]>();
  pending.set(root.node, Object.assign(new Array(root.node.nOut).fill(undefined), { [root.outIndex]: seed }));
  noGrad(() => {
    for (const node of topoOrder(root.node!)) {
      const outGrads = pending.get(node);
      pending.delete(node);
      if (!outGrads || outGrads.every((g) => !g)) continue;
      const inGrads = node.backward(outGrads.map((g) => g ?? null));
      // Each gradient handed on must have one owner, because accumulate() disposes it. Rules may
      // return an output cotangent unchanged (add, reshape to the same shape) or the same tensor
      // for two inputs, and the seed belongs to the caller: those are handed on as aliases (a
      // view of the same buffer, no copy), so disposing one never frees another's data.
      const owned = new Set<Tensor>([...outGrads.filter((g): g is Tensor => !!g), seed!]);
      node.inputs.forEach((inp, i) => {
        let g = inGrads[i];
        if (!g || !inp.requiresGrad) return;
        if (!sameShape(g.shape, inp.shape)) {
          throw new Error(`autograd: ${node.op} returned a gradient ${shapeStr(g.shape)} for input ${i} of shape ${shapeStr(inp.shape)}`);
        }
        if (owned.has(g)) g = g.view(g.shape);
        owned.add(g);
        if (inp.node) {
          const slot = pending.get(inp.node) ?? new Array(inp.node.nOut).fill(undefined);
          slot[inp.outIndex] = accumulate(slot[inp.outIndex], g);
          pending.set(inp.node, slot);
        } else {
          leafGrads.set(inp, accumulate(leafGrads.get(inp), g));
        }
      });
      // gradients for inputs that do not need them, then this node's own cotangents
      for (const g of new Set(inGrads)) if (g && !owned.has(g)) g.dispose();
      for (const g of outGrads) if (g && g !== seed) g.dispose();
    }
  });
  if (ownSeed && ![...leafGrads.values()].includes(ownSeed)) ownSeed.dispose();
  return leafGrads;
}

/**
 * PyTorch-style: adds d(root)/d(leaf) into `leaf.grad` for every leaf that requires a gradient.
 * The .grad tensors are kept out of tidy() scopes (they belong to their leaves).
 */
export function backward(root: Tensor, seed?: Tensor): void {
  for (const [leaf, g] of backwardFrom(root, seed)) {
    keep(g);
    if (leaf.grad) {
      const sum = keep(noGrad(() => ops!.add(leaf.grad!, g)));
      leaf.grad.dispose();
      g.dispose();
      leaf.grad = sum;
    } else leaf.grad = g;
  }
}
