/** Successive halving: the schedule, who goes on, and that it picks full cross-validation's point. */
import type { AlsPoint } from '../src/contracts/experiment';
import { bestRow, expandGrid } from '../src/workflows/grid';
import { contenders, halvingSchedule, raceRow, raceWinner, useHalving, type RaceEntry } from '../src/workflows/halving';

const point = (rank: number, regParam: number): AlsPoint => ({ rank, regParam, maxIter: 10, alpha: 1, implicitPrefs: false });
const entry = (index: number, p: AlsPoint, foldRmse: number[]): RaceEntry => ({ index, point: p, foldRmse, foldMae: foldRmse.map((r) => r * 0.8) });

test('on by default from 8 points, and the option wins either way', () => {
  expect([useHalving(6), useHalving(7), useHalving(8), useHalving(12)]).toEqual([false, false, true, true]);
  expect([useHalving(12, false), useHalving(2, true)]).toEqual([false, true]);
});

test('every point on the first fold, then half (rounded up, at least one) per fold', () => {
  expect(halvingSchedule(8, 3)).toEqual([8, 4, 2]);
  expect(halvingSchedule(9, 3)).toEqual([9, 5, 3]);
  expect(halvingSchedule(12, 5)).toEqual([12, 6, 3, 2, 1]);
  expect(halvingSchedule(1, 3)).toEqual([1, 1, 1]);
});

test('the better half by mean RMSE so far goes on; ties go to the simpler model', () => {
  const race = [
    entry(0, point(20, 0.1), [0.90]),
    entry(1, point(10, 0.1), [0.95]),
    entry(2, point(10, 0.2), [0.95]), // ties with 1: larger regParam is simpler
    entry(3, point(30, 0.1), [0.99]),
  ];
  expect(contenders(race, 0, 3)).toEqual([0, 1, 2, 3]);
  expect(contenders(race, 1, 3)).toEqual([0, 2]);
  // After fold 1 only points scored on it are ranked, by their mean over both folds.
  const after = [entry(0, point(20, 0.1), [0.90, 1.0]), entry(1, point(10, 0.1), [0.95]), entry(2, point(10, 0.2), [0.95, 0.9]), entry(3, point(30, 0.1), [0.99])];
  expect(contenders(after, 2, 3)).toEqual([2]); // 0.925 beats 0.95
});

test('on a surface whose fold ranking is stable it picks the same point as full cross-validation', () => {
  const folds = 3;
  const points = expandGrid({ rank: [8, 12, 16, 20], regParam: [0.05, 0.1, 0.2], maxIter: [10], alpha: [1], implicitPrefs: false });
  // A bowl with its minimum at rank 12, regParam 0.1, plus fold noise far smaller than its slope.
  const rmse = (p: AlsPoint, f: number) => 0.85 + Math.abs(p.rank - 12) / 200 + Math.abs(p.regParam - 0.1) + ((p.rank * 7 + f * 13) % 5) / 1e4;
  const full = bestRow(points.map((p, index) => raceRow(entry(index, p, [0, 1, 2].map((f) => rmse(p, f))))));

  const race = points.map((p, index) => entry(index, p, []));
  let fits = 0;
  for (let f = 0; f < folds; f++) {
    for (const i of contenders(race, f, folds)) {
      race[i]!.foldRmse.push(rmse(race[i]!.point, f));
      race[i]!.foldMae.push(0);
      fits++;
    }
  }
  expect(raceWinner(race, folds)?.point).toEqual(full?.point);
  expect(raceWinner(race, folds)?.rmse).toBeCloseTo(full!.rmse, 12);
  expect(fits).toBe(12 + 6 + 3); // instead of 36
});
