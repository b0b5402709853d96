/** The hyperparameter grid: expansion, activity ids, and the deterministic choice of the best point. */
import type { AlsGrid, AlsPoint } from '../contracts/experiment';
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

/**
 * The best row: lowest mean CV RMSE; ties (within 1e-12) go to the simpler model — smaller rank,
 * then larger regParam, then fewer iterations — and finally to the lower grid index.
 */
export function bestRow(rows: readonly GridRow[]): GridRow | null {
  const sorted = [...rows].sort(
    (a, b) =>
      (Math.abs(a.rmse - b.rmse) > 1e-12 ? a.rmse - b.rmse : 0) ||
      a.point.rank - b.point.rank ||
      b.point.regParam - a.point.regParam ||
      a.point.maxIter - b.point.maxIter ||
      a.index - b.index,
  );
  return sorted[0] ?? null;
}
