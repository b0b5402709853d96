/**
 * The best-point rule across languages: the workflow's `bestRow` and the report's
 * `plots.best_grid_point` (Python, over the same GridRows) pick the same, hand-checked point on ties.
 * Regression: the report used to prefer the smaller regParam while the workflow trained the larger.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { AlsPoint } from '../src/contracts/experiment';
import type { GridRow } from '../src/contracts/pipeline';
import { loadSettings } from '../src/settings';
import { bestByObjective, bestRow, type Scored } from '../src/workflows/grid';

const point = (rank: number, regParam: number, maxIter = 10): AlsPoint => ({ rank, regParam, maxIter, alpha: 1, implicitPrefs: false });
const rows = (...specs: [number, number, number, number?][]): GridRow[] =>
  specs.map(([rmse, rank, regParam, maxIter], index) => ({ index, point: point(rank, regParam, maxIter), rmse, mae: rmse * 0.8, rmseStd: 0.01 }));

const withFolds = (grid: GridRow[], folds: number[]): GridRow[] => grid.map((row, i) => ({ ...row, folds: folds[i]! }));

/** Each case: the grid, and the index of the point the rule must pick. */
const CASES: [string, GridRow[], number][] = [
  ['lower RMSE wins over a simpler model', rows([0.9, 8, 0.1], [0.9 - 1e-9, 16, 0.1]), 1],
  ['an RMSE tie goes to the smaller rank', rows([0.9, 16, 0.1], [0.9, 8, 0.1]), 1],
  ['then to the larger regParam', rows([0.9, 8, 0.05], [0.9, 8, 0.2], [0.9, 8, 0.1]), 1],
  ['then to fewer iterations', rows([0.9, 8, 0.1, 20], [0.9, 8, 0.1, 5]), 1],
  ['RMSEs within the tolerance are a tie', rows([0.9 + 5e-13, 12, 0.1], [0.9, 16, 0.1]), 0],
  ['a tie on every key goes to the earlier point', rows([0.95, 8, 0.1], [0.9, 12, 0.1], [0.9, 12, 0.1]), 1],
  // Successive halving: a point dropped after one fold cannot win on that fold's lucky score.
  ['only the points scored on the most folds compete', withFolds(rows([0.85, 8, 0.1], [0.9, 12, 0.1], [0.91, 16, 0.1]), [1, 3, 3]), 1],
];

function pythonBest(grids: GridRow[][]): Record<string, unknown>[] {
  const venv = loadSettings().spark.venv ?? resolve(__dirname, '..', '.lensflow', 'venv');
  const script = [
    'import json, sys',
    'from lensflow_spark import plots',
    'from lensflow_spark.report import grid_rows',
    'print(json.dumps([plots.best_grid_point(grid_rows(g)) for g in json.load(sys.stdin)]))',
  ].join('\n');
  const res = spawnSync(join(venv, 'bin', 'python'), ['-c', script], {
    input: JSON.stringify(grids),
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: resolve(__dirname, '..', 'spark') },
  });
  if (res.status !== 0) throw new Error(`python failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as Record<string, unknown>[];
}

describe('the best-point rule, one definition for TypeScript and Python', () => {
  const python = pythonBest(CASES.map(([, grid]) => grid));

  it.each(CASES.map((c, i) => [...c, i] as const))('%s', (_name, grid, expected, i) => {
    const ts = bestRow(grid)!;
    expect(ts.index).toBe(expected);
    const want = grid[expected]!;
    expect(python[i]).toMatchObject({ rank: want.point.rank, reg_param: want.point.regParam, max_iter: want.point.maxIter, rmse: want.rmse });
  });

  it('does not depend on the order the rows arrive in (the workflow collects them as steps finish)', () => {
    for (const [, grid, expected] of CASES) expect(bestRow([...grid].reverse())!.index).toBe(expected);
  });
});

/** Family points (snake_case keys) judged by their own objective: each case's rows and the index the rule must pick. */
const FAMILY_CASES: [string, Scored[], number][] = [
  ['a rating family: lower CV RMSE wins', [fam(0, 'rmse', 0.86, { rank: 20 }), fam(1, 'rmse', 0.85, { rank: 50 })], 1],
  ['a ranking family: higher CV NDCG@k wins', [fam(0, 'ndcg_at_k', 0.3, { alpha: 1 }), fam(1, 'ndcg_at_k', 0.2, { alpha: 5 })], 0],
  ['an NDCG tie goes to the smaller rank', [fam(0, 'ndcg_at_k', 0.3, { rank: 32 }), fam(1, 'ndcg_at_k', 0.3, { rank: 16 })], 1],
  ['then to the larger reg_param', [fam(0, 'rmse', 0.9, { rank: 8, reg_param: 0.1 }), fam(1, 'rmse', 0.9, { rank: 8, reg_param: 0.2 })], 1],
  ['then to the stronger l2', [fam(0, 'ndcg_at_k', 0.3, { l2: 200 }), fam(1, 'ndcg_at_k', 0.3, { l2: 500 })], 1],
  ['a tie on every key goes to the earlier point', [fam(0, 'ndcg_at_k', 0.3, { l2: 200 }), fam(1, 'ndcg_at_k', 0.3, { l2: 200 })], 0],
];
function fam(index: number, objective: Scored['objective'], score: number, point: Record<string, number>): Scored {
  return { index, objective, score, point };
}

describe('the best-point rule generalised to each family objective, one definition for TypeScript and Python', () => {
  const venv = loadSettings().spark.venv ?? resolve(__dirname, '..', '.lensflow', 'venv');
  const script = 'import json, sys\nfrom lensflow_spark.grid import best_by_objective\nprint(json.dumps([best_by_objective(g)["index"] for g in json.load(sys.stdin)]))';
  const res = spawnSync(join(venv, 'bin', 'python'), ['-c', script], {
    input: JSON.stringify(FAMILY_CASES.map(([, rows]) => rows)),
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: resolve(__dirname, '..', 'spark') },
  });

  it.each(FAMILY_CASES.map((c, i) => [...c, i] as const))('%s', (_name, rows, expected, i) => {
    expect(res.stderr).toBe('');
    expect(bestByObjective(rows)!.index).toBe(expected);
    expect(bestByObjective([...rows].reverse())!.index).toBe(expected);
    expect((JSON.parse(res.stdout) as number[])[i]).toBe(expected);
  });

  it('refuses to compare rows judged by different objectives', () => {
    expect(() => bestByObjective([fam(0, 'rmse', 0.9, {}), fam(1, 'ndcg_at_k', 0.3, {})])).toThrow('different objectives');
  });
});
