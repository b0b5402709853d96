import { z } from 'zod';

/**
 * Where Spark steps run.
 * - `local`: spark-submit on the worker's machine (`--master local[*]`), the default.
 * - `emr`: an EMR cluster; `clusterId` of an existing cluster, or a transient one the pipeline
 *   creates from `transient` and terminates at the end and on cancel.
 */
export const EmrTransientSpec = z.object({
  releaseLabel: z.string().default('emr-7.12.0'),
  instanceType: z.string().default('m5.xlarge'),
  instanceCount: z.number().int().min(1).max(100).default(3),
  /** S3 folder for cluster and step logs (stderr of failed steps is read from here). */
  logUri: z.string().regex(/^s3:\/\//),
  serviceRole: z.string().default('EMR_DefaultRole'),
  jobFlowRole: z.string().default('EMR_EC2_DefaultRole'),
  subnetId: z.string().optional(),
});

export const RunnerSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local') }),
  z.object({
    kind: z.literal('emr'),
    clusterId: z.string().regex(/^j-[A-Z0-9]+$/).optional(),
    transient: EmrTransientSpec.optional(),
  }).refine((r) => Boolean(r.clusterId) !== Boolean(r.transient), 'give exactly one of clusterId or transient'),
]);
export type RunnerSpec = z.infer<typeof RunnerSpec>;

/**
 * What a running step heartbeats, so a retried activity resumes the same step instead of
 * starting another: the local process group, or the EMR cluster and step ids.
 */
export const StepHandle = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local'), pgid: z.number().int().positive() }),
  z.object({ kind: z.literal('emr'), clusterId: z.string(), stepId: z.string() }),
]);
export type StepHandle = z.infer<typeof StepHandle>;
