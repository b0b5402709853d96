/** The hyperparameter grid: expansion, activity ids, and the deterministic choice of the best point. */
import type { AlsGrid, AlsPoint } from '../contracts/experiment';
import { BEST_POINT_RULE } from '../contracts/bestPoint';
import type { GridRow } from '../contracts/pipeline';

/** The cartesian product of the grid's lists, in a stable order (rank, regParam, maxIter, alpha). */
export function expandGrid(grid: AlsGrid): AlsPoint[] {
  const points: AlsPoint[] = [];
  for (const rank of grid.rank)
    for (const regParam of grid.regParam)
      for (const maxIter of grid.maxIter)
        for (const alpha of grid.implicitPrefs ? grid.alpha : [1])
          points.push({ rank, regParam, maxIter, alpha, implicitPrefs: grid.implicitPrefs });
  return points;
}

/** e.g. `grid-003-rank10-reg0.1-iter10`: what the Web UI shows for the point's activity. */
export function gridActivityId(index: number, p: AlsPoint): string {
  const alpha = p.implicitPrefs ? `-alpha${p.alpha}` : '';
  return `grid-${String(index).padStart(3, '0')}-rank${p.rank}-reg${p.regParam}-iter${p.maxIter}${alpha}`;
}

/** True when `a` beats `b` under the best-point rule (lower RMSE beyond the tolerance, then the tie-break keys). */
function beats(a: GridRow, b: GridRow): boolean {
  if (Math.abs(a.rmse - b.rmse) > BEST_POINT_RULE.tolerance) return a.rmse < b.rmse;
  for (const { field, order } of BEST_POINT_RULE.tieBreak) {
    const d = a.point[field] - b.point[field];
    if (d !== 0) return order === 'asc' ? d < 0 : d > 0;
  }
  return false;
}

/**
 * The best row under `BEST_POINT_RULE`. A scan in grid order that keeps a row only when a later
 * one beats it: the same steps as the Python side's, so both pick the same row (a sort with a
 * tolerance is not a total order).
 */
export function bestRow(rows: readonly GridRow[]): GridRow | null {
  const inOrder = [...rows].sort((a, b) => a.index - b.index);
  return inOrder.reduce<GridRow | null>((best, row) => (best === null || beats(row, best) ? row : best), null);
}
