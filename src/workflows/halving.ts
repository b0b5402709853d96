/**
 * Successive halving over the CV folds, a cheaper search than full cross-validation: every point
 * is scored on the first fold, the better half goes on to the next fold, and so on. Points still
 * in the race at the last fold have been scored on every fold; the best of them wins. Pure and
 * deterministic (workflow code): ranks use `bestRow`'s rule, ties to the simpler model.
 */
import type { AlsPoint } from '../contracts/experiment';
import type { GridRow } from '../contracts/pipeline';
import { bestRow } from './grid';

/** Halving is on by default from this many grid points; smaller grids are fully cross-validated. */
export const HALVING_FROM_POINTS = 8;

/** Whether the grid search halves: `option` when given, else on from HALVING_FROM_POINTS points. */
export function useHalving(points: number, option?: boolean): boolean {
  return option ?? points >= HALVING_FROM_POINTS;
}

/** How many points are scored on each fold: all on the first, then half (rounded up) per fold. */
export function halvingSchedule(points: number, folds: number): number[] {
  const out: number[] = [];
  for (let f = 0, n = points; f < folds; f++, n = Math.max(1, Math.ceil(n / 2))) out.push(n);
  return out;
}

/** A point in the race: its RMSE and MAE on each fold it was scored on, in fold order. */
export interface RaceEntry {
  index: number;
  point: AlsPoint;
  foldRmse: number[];
  foldMae: number[];
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: readonly number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

/** A race entry as a grid row: its mean scores over the folds it was scored on. */
export function raceRow(e: RaceEntry): GridRow {
  return { index: e.index, point: e.point, rmse: mean(e.foldRmse), mae: mean(e.foldMae), rmseStd: std(e.foldRmse), folds: e.foldRmse.length };
}

/** The entries ranked best first by mean RMSE so far, ties to the simpler model (`bestRow`). */
export function rank(entries: readonly RaceEntry[]): RaceEntry[] {
  const left = new Map(entries.map((e) => [e.index, e]));
  const out: RaceEntry[] = [];
  while (left.size > 0) {
    const best = bestRow([...left.values()].map(raceRow))!;
    out.push(left.get(best.index)!);
    left.delete(best.index);
  }
  return out;
}

/**
 * The indexes of the points scored on fold `fold` (0-based): every point on fold 0; on a later fold
 * the best `halvingSchedule(...)[fold]` of the points that were scored on the previous one.
 */
export function contenders(race: readonly RaceEntry[], fold: number, folds: number): number[] {
  if (fold === 0) return race.map((e) => e.index);
  const previous = race.filter((e) => e.foldRmse.length >= fold);
  return rank(previous)
    .slice(0, halvingSchedule(race.length, folds)[fold])
    .map((e) => e.index)
    .sort((a, b) => a - b);
}

/** The winner: the best of the points scored on every fold (`bestRow` keeps only the deepest rows). */
export function raceWinner(race: readonly RaceEntry[], folds: number): GridRow | null {
  return bestRow(race.filter((e) => e.foldRmse.length === folds).map(raceRow));
}
