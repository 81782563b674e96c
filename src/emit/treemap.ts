/**
 * A nested squarified treemap (Bruls, Huizing and van Wijk, 2000) of a dominator tree: each path
 * is a block whose area is its dominated size (itself and what only it keeps), split into its own
 * NAR size and one block per path it immediately dominates. Pure; the HTML writer draws the
 * rectangles. Blocks smaller than `minArea` are not split further (one block for the subtree).
 */
import { f64At, i32At, itemAt } from '../checked-index.js';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * One rectangle to draw: `own` is the path's own NAR size, `subtree` a block not split further,
 * `group` the outline of a split block, `rest` the paths of one block too small to draw each
 * (`count` of them; `id` is the block's path, -1 at the top).
 */
export interface TreemapCell extends Rect {
  id: number;
  kind: 'own' | 'subtree' | 'group' | 'rest';
  depth: number;
  count?: number;
}

/** Lays out `values` (sorted descending, all > 0) in `r`, rows along the shorter side. */
export function squarify(values: readonly number[], r: Rect): Rect[] {
  const out: Rect[] = [];
  let total = 0;
  for (const v of values) total += v;
  let { x, y, w, h } = r;
  let i = 0;
  let remaining = total;
  while (i < values.length) {
    if (remaining <= 0 || w <= 0 || h <= 0) {
      for (; i < values.length; i++) out.push({ x, y, w: 0, h: 0 });
      break;
    }
    const scale = (w * h) / remaining; // area per unit of value
    const side = Math.min(w, h);
    // Grow the row while the worst aspect ratio improves.
    let rowSum = 0;
    let j = i;
    let worst = Infinity;
    let maxV = 0;
    let minV = Infinity;
    while (j < values.length) {
      const v = itemAt(values, j);
      const s = rowSum + v;
      const rowArea = s * scale;
      const thick = rowArea / side;
      // Running extremes of the row (the values need not be sorted: a rest block may follow).
      maxV = Math.max(maxV, v);
      minV = Math.min(minV, v);
      // The worst aspect ratio (long side / short side) of the row's cells.
      const worstHere = Math.max((maxV * scale) / (thick * thick), (thick * thick) / (minV * scale));
      if (worstHere > worst) break;
      worst = worstHere;
      rowSum = s;
      j++;
    }
    const thick = (rowSum * scale) / side;
    let off = 0;
    for (let k = i; k < j; k++) {
      const len = (itemAt(values, k) * scale) / thick;
      if (w >= h) out.push({ x, y: y + off, w: thick, h: len }); // a column on the left
      else out.push({ x: x + off, y, w: len, h: thick }); // a row on top
      off += len;
    }
    if (w >= h) (x += thick), (w -= thick);
    else (y += thick), (h -= thick);
    remaining -= rowSum;
    i = j;
  }
  return out;
}

export interface TreemapInput {
  /** Immediate dominator of each path (negative: none but the roots; -2 unreached). */
  idom: ArrayLike<number>;
  /** Own size of each path (NaN counts as 0). */
  own: ArrayLike<number>;
  /** Dominated size of each path (own + what it dominates). */
  dominated: ArrayLike<number>;
}

export interface TreemapOptions {
  /** Blocks smaller than this (in square units) are drawn whole. */
  minArea: number;
  /** Stop splitting once this many cells are laid out. */
  maxCells: number;
  /** Inset of a split block's children (room for its outline). */
  pad: number;
  /** Children that would get less than this area are drawn together as one `rest` block (default 0: none). */
  minCellArea?: number;
}

export function layoutTreemap(t: TreemapInput, r: Rect, opts: TreemapOptions): TreemapCell[] {
  // Typed copies (a few ms for 190,000 paths): checked reads of one element type, whatever arrays came in.
  const idom = Int32Array.from(t.idom);
  const own = Float64Array.from(t.own);
  const dominated = Float64Array.from(t.dominated);
  const n = idom.length;
  const children: number[][] = Array.from({ length: n }, () => []);
  const top: number[] = [];
  for (let v = 0; v < n; v++) {
    const d = i32At(idom, v);
    if (d === -2) continue;
    if (f64At(dominated, v) <= 0) continue;
    (d >= 0 ? itemAt(children, d) : top).push(v);
  }
  const bySize = (a: number, b: number): number => f64At(dominated, b) - f64At(dominated, a) || a - b;
  const cells: TreemapCell[] = [];
  const ownOf = (v: number): number => {
    const o = f64At(own, v);
    return Number.isNaN(o) ? 0 : o;
  };
  // Breadth-first, so that the cell budget is spent on the big blocks before their small descendants.
  type Job = { items: number[]; withOwn: number; rect: Rect; depth: number };
  const queue: Job[] = [{ items: top.sort(bySize), withOwn: -1, rect: r, depth: 0 }];
  for (let q = 0; q < queue.length; q++) {
    const { items, withOwn, rect, depth } = itemAt(queue, q);
    let values = items.map((v) => f64At(dominated, v));
    let ids = [...items];
    let kinds: ('own' | 'child' | 'rest')[] = items.map(() => 'child');
    // The smallest children (items are sorted by size) share one block once each would be too
    // small to see: 190,000 paths do not fit in a page as 190,000 rectangles.
    const minCell = opts.minCellArea ?? 0;
    if (values.length > 1) {
      let total = withOwn >= 0 ? ownOf(withOwn) : 0;
      for (const v of values) total += v;
      const scale = (rect.w * rect.h) / total;
      let cut = minCell > 0 ? values.findIndex((v) => v * scale < minCell) : -1;
      // The cell budget holds at every level too, shared out by area: a block gets its share.
      const room = Math.max(1, Math.floor((opts.maxCells * rect.w * rect.h) / (r.w * r.h)) - 1);
      if (values.length > room) cut = Math.min(cut < 0 ? values.length : cut, room);
      if (cut >= 0 && cut < values.length - 1) {
        let rest = 0;
        for (const v of values.slice(cut)) rest += v;
        const count = values.length - cut;
        values = [...values.slice(0, cut), rest];
        ids = [...ids.slice(0, cut), -count - 1];
        kinds = [...kinds.slice(0, cut), 'rest'];
      }
    }
    if (withOwn >= 0 && ownOf(withOwn) > 0) {
      // The path's own bytes take their place among its children by size.
      const o = ownOf(withOwn);
      let at = values.findIndex((x) => x < o);
      if (at < 0) at = values.length;
      values.splice(at, 0, o);
      ids.splice(at, 0, withOwn);
      kinds.splice(at, 0, 'own');
    }
    const rects = squarify(values, rect);
    rects.forEach((rc, k) => {
      const id = itemAt(ids, k);
      if (rc.w * rc.h <= 0) return;
      if (kinds[k] === 'rest') return void cells.push({ ...rc, id: withOwn, kind: 'rest', depth, count: -id - 1 });
      if (kinds[k] === 'own') return void cells.push({ ...rc, id, kind: 'own', depth });
      const kids = itemAt(children, id);
      const inner = { x: rc.x + opts.pad, y: rc.y + opts.pad, w: rc.w - 2 * opts.pad, h: rc.h - 2 * opts.pad };
      if (kids.length === 0) return void cells.push({ ...rc, id, kind: 'own', depth });
      if (rc.w * rc.h < opts.minArea || inner.w <= 0 || inner.h <= 0 || cells.length + queue.length - q >= opts.maxCells) {
        return void cells.push({ ...rc, id, kind: 'subtree', depth });
      }
      cells.push({ ...rc, id, kind: 'group', depth });
      queue.push({ items: kids.sort(bySize), withOwn: id, rect: inner, depth: depth + 1 });
    });
  }
  return cells;
}
