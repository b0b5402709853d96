/**
 * The workflow's result: a compact summary of the full result document, a few KB whatever the grid
 * size, so the Web UI shows it in one screen. Pure, so workflow code and tests share it.
 */
import type { GridRow, TrainingPipelineResult } from '../contracts/pipeline';
import { BASELINES, SUMMARY_GRID_ROWS, type PipelineSummary } from '../contracts/summary';
import { bestRow } from './grid';

/** The `n` best rows, best first, by the grid's own best-point rule. */
function bestRows(rows: readonly GridRow[], n: number): GridRow[] {
  const left = [...rows];
  const out: GridRow[] = [];
  while (out.length < n && left.length > 0) {
    const best = bestRow(left)!;
    out.push(best);
    left.splice(left.indexOf(best), 1);
  }
  return out;
}

export function summarise(full: TrainingPipelineResult, resultUri: string): PipelineSummary {
  const models: PipelineSummary['test'] = { ...full.test };
  return {
    runId: full.runId,
    dataset: full.dataset,
    status: 'completed',
    runUri: full.runUri,
    resultUri,
    best: full.best,
    gridPoints: full.grid.length + (full.families?.grid.length ?? 0),
    ...(full.families ? { families: { best: full.families.best, rating: full.families.rating, ranking: full.families.ranking } } : {}),
    grid: bestRows(full.grid, SUMMARY_GRID_ROWS),
    test: models,
    baselines: BASELINES.filter((b) => b in models),
    ranking: full.details.evaluation.ranking,
    clean: { counts: full.clean.counts },
    outputs: { ...full.outputs },
    registry: full.registry && {
      decision: full.registry.decision,
      reason: full.registry.reason,
      champion: full.registry.champion?.runId ?? null,
      decisionUri: full.registry.decisionUri,
    },
    stages: full.stages,
  };
}
