/**
 * Workflow `trainingPipeline`: stage the dataset in S3, then clean it with a Spark step.
 * Deterministic orchestration only; every side effect is an activity.
 */
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import {
  TrainingPipelineInput,
  runLayout,
  type TrainingPipelineResult,
} from '../contracts/pipeline';

const { stageDataset } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2s', maximumAttempts: 5, nonRetryableErrorTypes: ['ZodError'] },
});

// Spark steps heartbeat while they run; a lost worker is noticed within the heartbeat timeout and
// the retry finds a finished step's result in S3 instead of running it again.
const { runSparkStep } = proxyActivities<Activities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '60s',
  retry: { initialInterval: '5s', maximumAttempts: 3, nonRetryableErrorTypes: ['ZodError'] },
});

export async function trainingPipeline(rawInput: TrainingPipelineInput): Promise<TrainingPipelineResult> {
  const parsed = TrainingPipelineInput.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid trainingPipeline input:\n${z.prettifyError(parsed.error)}`, 'InvalidInput');
  }
  const input = parsed.data;
  const layout = runLayout(input.bucket, input.prefix, input.runId);
  const stages: TrainingPipelineResult['stages'] = [];
  const timed = async <T>(stage: string, fn: () => Promise<T>, reused: (t: T) => boolean): Promise<T> => {
    const t0 = Date.now();
    const out = await fn();
    stages.push({ stage, seconds: (Date.now() - t0) / 1000, reused: reused(out) });
    return out;
  };

  const staged = await timed(
    'stage',
    () => stageDataset({ dataset: input.dataset, source: input.source, bucket: input.bucket, prefix: input.prefix }),
    (s) => s.files.every((f) => f.action === 'unchanged'),
  );

  const clean = await timed(
    'clean',
    () =>
      runSparkStep({
        runId: input.runId,
        job: 'clean',
        bucket: input.bucket,
        prefix: input.prefix,
        jobArgs: [
          '--dataset', input.dataset,
          '--raw', staged.rawUri,
          '--output', layout.processedUri,
          '--result', layout.resultUri('clean'),
        ],
        resultUri: layout.resultUri('clean'),
      }),
    (r) => r.reused,
  );

  return {
    runId: input.runId,
    dataset: input.dataset,
    runUri: layout.runUri,
    staged,
    clean: clean.result,
    stages,
  };
}
