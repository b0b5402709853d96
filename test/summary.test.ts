/**
 * The compact workflow result and what the CLI prints from it, over the full result document of a
 * real ml-latest-small run (`runs/<runId>/results/pipeline.json`, the README's run, kept as a fixture).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure, ActivityFailure, RetryState } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { GridRow, TrainingPipelineResult } from '../src/contracts/pipeline';
import { PipelineSummary, SUMMARY_GRID_ROWS } from '../src/contracts/summary';
import { progressLine, renderSummary, rootCause } from '../src/cli/render';
import { bestRow } from '../src/workflows/grid';
import { summarise } from '../src/workflows/summary';

const full = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'pipeline-result-ml-latest-small.json'), 'utf8')) as TrainingPipelineResult;
const uri = `${full.runUri}results/pipeline.json`;
const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));
const links = { webUi: 'http://127.0.0.1:8233/namespaces/default/workflows/lensflow-x', report: `${full.outputs.report} (lensflow report x)` };

test('the summary of a real run is valid, under 8 KB, and points at the full document', () => {
  const s = PipelineSummary.parse(summarise(full, uri));
  expect(bytes(full)).toBeGreaterThan(8192);
  expect(bytes(s)).toBeLessThan(8192);
  expect(s.resultUri).toBe(uri);
  expect(s.best).toEqual(full.best);
  expect(s.grid[0]).toEqual(full.best);
  expect(s.gridPoints).toBe(full.grid.length);
  expect(s.test).toEqual(full.test);
  expect(s.baselines).toEqual(['global_mean', 'user_item_bias', 'most_popular']);
  expect(s.registry?.decision).toBe(full.registry!.decision);
});

test('a large grid keeps the summary under 8 KB: only the best rows, best first', () => {
  const rows: GridRow[] = Array.from({ length: 300 }, (_, i) => ({ ...full.best, index: i, rmse: 0.9 + ((i * 37) % 300) / 1000 }));
  const s = summarise({ ...full, grid: rows, best: bestRow(rows)! }, uri);
  expect(bytes(s)).toBeLessThan(8192);
  expect(s.gridPoints).toBe(300);
  expect(s.grid).toHaveLength(SUMMARY_GRID_ROWS);
  expect(s.grid.map((r) => r.rmse)).toEqual([...rows.map((r) => r.rmse)].sort((a, b) => a - b).slice(0, SUMMARY_GRID_ROWS));
});

test('the printed summary fits one screen and lists every model the evaluation scored', () => {
  // A model family the evaluation may add (issue 12): it shows as a model, not a baseline.
  const withNew = { ...full, test: { ...full.test, bias_als: { ...full.test.als, rmse: 0.85 } } };
  const text = renderSummary(PipelineSummary.parse(summarise(withNew, uri)), links);
  const lines = text.split('\n');
  expect(lines.length).toBeLessThanOrEqual(40);
  expect(lines[0]).toContain(`run ${full.runId} (ml-latest-small): completed`);
  const tableRows = lines.filter((l) => /^\w+( \(baseline\))? +\d/.test(l)).map((l) => l.split(/\s+/)[0]);
  expect(tableRows).toEqual(['bias_als', 'als', 'user_item_bias', 'most_popular', 'global_mean']);
  expect(text).toContain('user_item_bias (baseline)');
  // The best model family against the best baseline, with the real numbers.
  const baseline = full.test.user_item_bias.rmse!;
  expect(text).toContain(`bias_als RMSE 0.8500 is ${(((baseline - 0.85) / baseline) * 100).toFixed(1)}% below the best baseline (user_item_bias, ${baseline.toFixed(4)})`);
  expect(text).toContain(`registry: ${full.registry!.decision}`);
  expect(text).toContain(`Web UI:  ${links.webUi}`);
  expect(text).toContain(`report:  ${full.outputs.report}`);
});

test('a model family that loses to a baseline is said to, in so many words', () => {
  // The fixture's own run: ALS 0.8891 against the user + item bias baseline's 0.8752.
  const [als, bias] = [full.test.als.rmse!, full.test.user_item_bias.rmse!];
  expect(als).toBeGreaterThan(bias);
  const text = renderSummary(summarise(full, uri), links);
  expect(text).toContain(`als RMSE ${als.toFixed(4)} is ${(((als - bias) / bias) * 100).toFixed(1)}% ABOVE the best baseline (user_item_bias, ${bias.toFixed(4)})`);
});

test('the progress line names the stage, grid points done/total, the best so far and the elapsed time', () => {
  const line = progressLine({ runId: 'r', stage: 'grid', stagesDone: ['stage', 'clean', 'split'], grid: { done: 3, total: 6 }, best: full.best, cancelRequested: null }, 754_000);
  expect(line).toBe(`[12:34] grid · grid 3/6 · best so far rank ${full.best.point.rank} reg ${full.best.point.regParam} iter ${full.best.point.maxIter} RMSE ${full.best.rmse.toFixed(4)}`);
});

test("a failure's root cause is found at the end of the cause chain", () => {
  const app = ApplicationFailure.nonRetryable('ratings.csv already holds content with SHA-256 ab12…', 'StagingConflict');
  const activity = new ActivityFailure('Activity task failed', 'stageDataset', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', app);
  const err = new WorkflowFailedError('Workflow execution failed', activity, RetryState.NON_RETRYABLE_FAILURE);
  expect(rootCause(err)).toEqual({ message: 'ratings.csv already holds content with SHA-256 ab12…', type: 'StagingConflict (ApplicationFailure)', activity: '1 (stageDataset)' });
});
