import { z } from 'zod';
import { JobName } from './jobResults';
import { RunnerSpec } from './runner';
import { BucketName, KeyPrefix, S3Uri } from './s3';

/**
 * One Spark step, shaped as EMR's AddJobFlowSteps takes it: `command-runner.jar` with the
 * spark-submit arguments. The local runner executes the very same definition on local Spark.
 */
export const SparkStep = z.object({
  name: z.string().min(1).max(256),
  actionOnFailure: z.enum(['CONTINUE', 'CANCEL_AND_WAIT', 'TERMINATE_CLUSTER']),
  hadoopJarStep: z.object({
    jar: z.literal('command-runner.jar'),
    args: z.array(z.string()).refine((a) => a[0] === 'spark-submit', 'a step runs spark-submit'),
  }),
});
export type SparkStep = z.infer<typeof SparkStep>;

export const RunSparkStepInput = z.object({
  runId: z.string().min(1),
  job: JobName,
  /** Bucket and prefix where the job package is published (`<prefix>/code/<hash>/`). */
  bucket: BucketName,
  prefix: KeyPrefix,
  /** The job's own arguments, with `s3://` URIs. */
  jobArgs: z.array(z.string()),
  /** Where the job writes its result JSON; an existing valid result means the step already ran. */
  resultUri: S3Uri,
  /** Where the step runs; an EMR runner here always names its cluster id. */
  runner: RunnerSpec.default({ kind: 'local' }),
});
export type RunSparkStepInput = z.input<typeof RunSparkStepInput>;

export interface RunSparkStepResult<R> {
  step: SparkStep;
  result: R;
  /** True when a valid result was already in S3 and the step was not run again. */
  reused: boolean;
  durationSeconds: number;
}
