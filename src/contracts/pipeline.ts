import { z } from 'zod';
import { DatasetName, DataSource } from './datasets';
import { CleanResult } from './jobResults';
import { BucketName, KeyPrefix, S3Uri } from './s3';
import { StageDatasetResult } from './stage';

/** Run ids name S3 folders and workflow ids: `<dataset>-<yyyymmdd>-<suffix>`. */
export const RunId = z.string().regex(/^[a-z0-9][a-z0-9._-]{2,100}$/, 'use 3–101 lowercase letters, digits, dots, dashes, underscores');

export const TrainingPipelineInput = z
  .object({
    dataset: DatasetName.default('ml-latest-small'),
    source: DataSource.default({ kind: 'auto' }),
    bucket: BucketName,
    prefix: KeyPrefix,
    runId: RunId,
  })
  .strict();
export type TrainingPipelineInput = z.input<typeof TrainingPipelineInput>;

export const StageTiming = z.object({ stage: z.string(), seconds: z.number().nonnegative(), reused: z.boolean() });

export const TrainingPipelineResult = z.object({
  runId: RunId,
  dataset: DatasetName,
  runUri: S3Uri,
  staged: StageDatasetResult,
  clean: CleanResult,
  stages: z.array(StageTiming),
});
export type TrainingPipelineResult = z.infer<typeof TrainingPipelineResult>;

/** S3 layout of one run, derived from the input in one place. */
export function runLayout(bucket: string, prefix: string, runId: string) {
  const runUri = `s3://${bucket}/${prefix}/runs/${runId}/`;
  return {
    runUri,
    processedUri: `${runUri}processed/`,
    resultUri: (job: string) => `${runUri}results/${job}.json`,
  };
}

/** The Temporal workflow id of a run: `lensflow-<runId>`. */
export function workflowIdFor(runId: string): string {
  return `lensflow-${runId}`;
}

/** A fresh run id, `<dataset>-<yyyymmdd>-<suffix>`, for callers outside workflow code. */
export function newRunId(dataset: string, now: Date, suffix: string): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `${dataset}-${day}-${suffix}`;
}
