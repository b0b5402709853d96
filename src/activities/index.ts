/** The worker's activities, built once over the worker's settings, S3/EMR clients and Temporal client. */
import type { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import type { EmrTransientSpec, RunnerSpec } from '../contracts/runner';
import type { Settings } from '../settings';
import { createTransientCluster, terminateCluster } from './emrCluster';
import { createEmrClient, createEmrRunner } from './emrRunner';
import { publishJobPackage } from './jobPackage';
import { createLocalRunner } from './localSparkRunner';
import { makeRegisterModel } from './registry';
import { makeClaimRunId } from './runClaim';
import { makeWriteResultDocument } from './resultDocument';
import { makeRunSparkStep } from './runSparkStep';
import { createS3Client } from './s3Client';
import type { SparkStepRunner } from './sparkRunner';
import { makeStageDataset } from './stageDataset';

/** Asks the server to cancel a workflow execution (the `cancel` signal's way of stopping a run). */
export function makeRequestCancellation(temporal: Client) {
  return async function requestCancellation(target: { workflowId: string; runId: string }): Promise<void> {
    await temporal.workflow.getHandle(target.workflowId, target.runId).cancel();
  };
}

export function createActivities(settings: Settings, temporal: Client) {
  const s3 = createS3Client(settings.s3);
  const emr = createEmrClient({ region: settings.emr.region, endpoint: settings.emr.endpoint });
  const local = createLocalRunner(settings);
  const emrRunners = new Map<string, SparkStepRunner>();
  const runnerFor = (spec: RunnerSpec): SparkStepRunner => {
    if (spec.kind === 'local') return local;
    if (!spec.clusterId) {
      throw ApplicationFailure.nonRetryable('an EMR step needs a cluster id: the pipeline creates the transient cluster first', 'InvalidInput');
    }
    const key = `${spec.clusterId}/${spec.stepConcurrencyLevel ?? ''}`;
    let runner = emrRunners.get(key);
    if (!runner) {
      const opts = { pollMs: settings.emr.pollMs, logWaitMs: settings.emr.logWaitMs, stepConcurrencyLevel: spec.stepConcurrencyLevel };
      emrRunners.set(key, (runner = createEmrRunner(emr, s3, spec.clusterId, opts)));
    }
    return runner;
  };
  return {
    stageDataset: makeStageDataset(s3, settings.data),
    claimRunId: makeClaimRunId(s3),
    runSparkStep: makeRunSparkStep(s3, settings, runnerFor),
    registerModel: makeRegisterModel(s3),
    writeResultDocument: makeWriteResultDocument(s3),
    requestCancellation: makeRequestCancellation(temporal),
    /**
     * Creates (or, on a retry, finds by its run tag) the run's transient EMR cluster. The job package
     * is published first: its bootstrap script builds the nodes' Python environment.
     */
    async createEmrCluster(input: {
      runId: string; spec: z.input<typeof EmrTransientSpec>; bucket: string; prefix: string; stepConcurrencyLevel?: number;
    }) {
      const ctx = Context.current();
      const { codeUri } = await publishJobPackage(s3, settings.spark, input.bucket, input.prefix);
      return createTransientCluster(emr, input.spec, input.runId, {
        codeUri, stepConcurrencyLevel: input.stepConcurrencyLevel, heartbeat: (p) => ctx.heartbeat(p),
      });
    },
    /** Terminates a cluster; a cluster already gone is fine. */
    async terminateEmrCluster(clusterId: string) {
      return terminateCluster(emr, clusterId);
    },
  };
}

/** Activity signatures for `proxyActivities` in workflow code (imported as a type only). */
export type Activities = ReturnType<typeof createActivities>;
