/** The worker's activities, built once over the worker's settings and S3 client. */
import type { Client } from '@temporalio/client';
import type { RunnerSpec } from '../contracts/runner';
import type { Settings } from '../settings';
import { createLocalRunner } from './localSparkRunner';
import { makeRegisterModel } from './registry';
import { makeRunSparkStep } from './runSparkStep';
import { createS3Client } from './s3Client';
import { makeStageDataset } from './stageDataset';

/** Asks the server to cancel a workflow execution (the `cancel` signal's way of stopping a run). */
export function makeRequestCancellation(temporal: Client) {
  return async function requestCancellation(target: { workflowId: string; runId: string }): Promise<void> {
    await temporal.workflow.getHandle(target.workflowId, target.runId).cancel();
  };
}

export function createActivities(settings: Settings, temporal: Client) {
  const s3 = createS3Client(settings.s3);
  const local = createLocalRunner(settings);
  const runnerFor = (spec: RunnerSpec) => {
    if (spec.kind === 'local') return local;
    throw new Error('the EMR runner is not wired yet');
  };
  return {
    stageDataset: makeStageDataset(s3, settings.data),
    runSparkStep: makeRunSparkStep(s3, settings, runnerFor),
    registerModel: makeRegisterModel(s3),
    requestCancellation: makeRequestCancellation(temporal),
  };
}

/** Activity signatures for `proxyActivities` in workflow code (imported as a type only). */
export type Activities = ReturnType<typeof createActivities>;
