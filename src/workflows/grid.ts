/** The hyperparameter grid: expansion, activity ids, and the deterministic choice of the best point. */
import type { AlsGrid, AlsPoint, FamilyGrid, FamilyPoint } from '../contracts/experiment';
import { BEST_POINT_RULE } from '../contracts/bestPoint';
import { OBJECTIVES, type FamilyName } from '../contracts/models';
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
 * The best row under `BEST_POINT_RULE`: of the rows scored on the most folds, the best by CV RMSE
 * through `bestByObjective`, so one scan serves ALS and every family, the same steps as the Python
 * side's (`best_row`). A row without `folds` counts as scored on every fold.
 */
export function bestRow(rows: readonly GridRow[]): GridRow | null {
  const depth = (row: GridRow) => row.folds ?? Infinity;
  const deepest = Math.max(-Infinity, ...rows.map(depth));
  const scored = rows.filter((row) => depth(row) === deepest).map((row) => ({ index: row.index, point: snakeKeys(row.point), objective: 'rmse' as const, score: row.rmse, row }));
  return bestByObjective(scored)?.row ?? null;
}

/** The cartesian product of a family's value lists, keys in the given order (the last varies fastest). */
export function expandFamilyGrid(grid: FamilyGrid): FamilyPoint[] {
  return Object.entries(grid).reduce<FamilyPoint[]>(
    (points, [key, values]) => points.flatMap((p) => values.map((v) => ({ ...p, [key]: v }))),
    [{}],
  );
}

/** e.g. `grid-bias_als-002-rank50-reg_param0.15`: the family and its point, as the Web UI shows them. */
export function familyActivityId(family: FamilyName, index: number, point: FamilyPoint): string {
  const keys = Object.entries(point).map(([k, v]) => `${k}${String(v)}`).join('-');
  return `grid-${family}-${String(index).padStart(3, '0')}${keys ? `-${keys}` : ''}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200);
}

const snake = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const snakeKeys = (point: object): Record<string, unknown> => Object.fromEntries(Object.entries(point).map(([k, v]) => [snake(k), v]));

/** A scored point of any family: what `bestByObjective` compares. */
export interface Scored {
  index: number;
  point: Record<string, unknown>;
  objective: 'rmse' | 'ndcg_at_k';
  score: number;
}

/**
 * True when `a` beats `b`: the better objective value beyond the rule's tolerance (lower RMSE,
 * higher NDCG@k), then the rule's tie-break keys on the snake_case point keys both points have.
 */
function beatsOnObjective(a: Scored, b: Scored): boolean {
  if (Math.abs(a.score - b.score) > BEST_POINT_RULE.tolerance) {
    const lower = Object.values(OBJECTIVES).find((o) => o.metric === a.objective)!.better === 'lower';
    return lower ? a.score < b.score : a.score > b.score;
  }
  for (const { field, order } of BEST_POINT_RULE.tieBreak) {
    const x = a.point[snake(field)];
    const y = b.point[snake(field)];
    if (typeof x !== 'number' || typeof y !== 'number' || x === y) continue;
    return order === 'asc' ? x < y : x > y;
  }
  return false;
}

/**
 * The best of one family's scored points by its objective: a scan in grid order where a later
 * point wins only when it beats the kept one (a sort with a tolerance is not a total order), step
 * for step as `best_by_objective` in `lensflow_spark.grid`. Rows of different objectives are an error.
 */
export function bestByObjective<T extends Scored>(rows: readonly T[]): T | null {
  if (new Set(rows.map((r) => r.objective)).size > 1) throw new Error('rows judged by different objectives cannot be compared');
  const inOrder = [...rows].sort((a, b) => a.index - b.index);
  return inOrder.reduce<T | null>((best, row) => (best === null || beatsOnObjective(row, best) ? row : best), null);
}
