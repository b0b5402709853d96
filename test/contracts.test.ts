/** The contracts: one source of truth shared with the Spark jobs, and the step descriptions. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_DIR, renderSchemas } from '../src/contracts/exportSchemas';
import { CleanResult } from '../src/contracts/jobResults';
import { TrainingPipelineInput, newRunId, workflowIdFor } from '../src/contracts/pipeline';

test('the JSON Schemas the Spark jobs validate against are generated from the zod contracts', () => {
  for (const [file, text] of Object.entries(renderSchemas())) {
    // Stale? Run `make contracts` and commit the result.
    expect(readFileSync(join(SCHEMA_DIR, file), 'utf8')).toBe(text);
  }
});

test('a clean result whose counts do not reconcile is rejected', () => {
  const doc = {
    job: 'clean',
    dataset: 'ml-latest-small',
    outputs: { ratings: 's3://b/r', movies: 's3://b/m' },
    counts: { ratings: { raw: 10, clean: 8, quarantined: { duplicate: 1 } }, movies: { raw: 1, clean: 1, quarantined: {} } },
  };
  const parsed = CleanResult.safeParse(doc);
  expect(parsed.success).toBe(false);
  expect(parsed.error?.issues[0]?.message).toBe('raw 10 != clean 8 + quarantined 1');
});

test('pipeline input gets defaults and run ids name the dataset and day', () => {
  const runId = newRunId('ml-100k', new Date('2026-11-24T23:59:00Z'), 'a1b2c3');
  expect(runId).toBe('ml-100k-20261124-a1b2c3');
  expect(workflowIdFor(runId)).toBe('lensflow-ml-100k-20261124-a1b2c3');
  expect(TrainingPipelineInput.parse({ bucket: 'lensflow', prefix: 'lensflow', runId })).toEqual({
    dataset: 'ml-latest-small',
    source: { kind: 'auto' },
    bucket: 'lensflow',
    prefix: 'lensflow',
    runId,
    grid: { rank: [10], regParam: [0.1], maxIter: [10], alpha: [1], implicitPrefs: false },
    split: { kind: 'random', testFraction: 0.2, cvFolds: 3, seed: 42 },
    ranking: { k: 10, relevanceThreshold: 4 },
    recommendations: 10,
    seed: 42,
    runner: { kind: 'local' },
    maxConcurrentSteps: 2,
    register: true,
    rerun: false,
  });
  expect(TrainingPipelineInput.safeParse({ bucket: 'lensflow', prefix: '/abs/', runId }).success).toBe(false);
  expect(TrainingPipelineInput.safeParse({ bucket: 'lensflow', prefix: 'p', runId, extra: 1 }).success).toBe(false);
});
