/**
 * Activity `runSparkStep`: publishes the job package, describes the job as an EMR step, runs it
 * with the configured runner and returns the job's result JSON, validated against its contract.
 * (On the local runner the workflow calls the warm Python worker instead: `lensflow_spark.worker`.)
 *
 * Idempotent: when a valid result already sits at `resultUri` (the step finished before a worker
 * crash or a retry), the step is not run again.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { prettifyError, type z } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import { JobInputs, resultUriOf } from '../contracts/jobInputs';
import { JobResults, type JobName, type JobResultOf } from '../contracts/jobResults';
import { parseS3Uri } from '../contracts/s3';
import { RunSparkStepInput, type RunSparkStepResult } from '../contracts/sparkStep';
import type { Settings } from '../settings';
import { publishJobPackage } from './jobPackage';
import { StepHandle, type RunnerSpec } from '../contracts/runner';
import { fromLocalUris } from './localSparkRunner';
import type { SparkStepRunner } from './sparkRunner';
import { getObjectText } from './s3Client';
import { buildSparkStep } from './sparkSteps';

/** Reads a job's result JSON from S3 (URIs in `s3://` form); undefined when the key does not exist. */
export async function readResult(s3: S3Client, uri: string): Promise<unknown> {
  const { bucket, key } = parseS3Uri(uri);
  const got = await getObjectText(s3, bucket, key);
  return got && fromLocalUris(JSON.parse(got.text));
}

/** Builds the activity over an S3 client, the worker's settings and its runners. */
export function makeRunSparkStep(s3: S3Client, settings: Settings, runnerFor: (spec: RunnerSpec) => SparkStepRunner) {
  return async function runSparkStep<J extends JobName>(
    rawInput: RunSparkStepInput & { job: J },
  ): Promise<RunSparkStepResult<JobResultOf<J>>> {
    const input = RunSparkStepInput.parse(rawInput);
    const jobInput = JobInputs[input.job].safeParse(input.input);
    if (!jobInput.success) {
      throw ApplicationFailure.nonRetryable(`invalid ${input.job} input:\n${prettifyError(jobInput.error)}`, 'InvalidInput');
    }
    const started = Date.now();
    const resultUri = resultUriOf(input);
    const contract = JobResults[input.job] as unknown as z.ZodType<JobResultOf<J>>;
    const pkg = await publishJobPackage(s3, settings.spark, input.bucket, input.prefix);
    const step = buildSparkStep(input.job, input.runId, pkg, jobInput.data, resultUri);

    const previous = await readResult(s3, resultUri);
    if (previous !== undefined && contract.safeParse(previous).success) {
      return { step, result: contract.parse(previous), reused: true, durationSeconds: 0 };
    }

    const ctx = Context.current();
    const resume = StepHandle.safeParse(ctx.info.heartbeatDetails);
    await runnerFor(input.runner).run(step, {
      logName: `${input.runId}-${input.job}`,
      heartbeat: (handle) => ctx.heartbeat(handle),
      cancelled: ctx.cancellationSignal,
      resume: resume.success ? resume.data : undefined,
    });

    const written = await readResult(s3, resultUri);
    if (written === undefined) {
      throw ApplicationFailure.nonRetryable(`Spark step "${step.name}" succeeded but wrote no result at ${resultUri}`, 'SparkJobFailed');
    }
    const parsed = contract.safeParse(written);
    if (!parsed.success) {
      throw ApplicationFailure.nonRetryable(
        `the ${input.job} result at ${resultUri} breaks its contract: ${parsed.error.message}`,
        'ContractViolation',
      );
    }
    return { step, result: parsed.data, reused: false, durationSeconds: (Date.now() - started) / 1000 };
  };
}
