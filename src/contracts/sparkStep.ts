import { z } from 'zod';
import { JobName } from './jobResults';
import { RunnerSpec } from './runner';
import { JobRequest, type JobRun } from './jobInputs';

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

/** A job run on a Spark step runner (EMR, or spark-submit on this machine): the request and where it runs. */
export const RunSparkStepInput = JobRequest.extend({
  job: JobName,
  /** Where the step runs; an EMR runner here always names its cluster id. */
  runner: RunnerSpec.default({ kind: 'local' }),
});
export type RunSparkStepInput = z.input<typeof RunSparkStepInput>;

export interface RunSparkStepResult<R> extends JobRun<R> {
  step: SparkStep;
}
