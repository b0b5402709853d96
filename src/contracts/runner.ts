import { z } from 'zod';

/**
 * The EMR release a transient cluster gets by default: the `emr-spark-8.x` line ships Spark 4.1
 * and Python 3.11, which the jobs need (Spark 4 APIs; numpy 2.3 requires Python ≥ 3.11).
 */
export const DEFAULT_RELEASE_LABEL = 'emr-spark-8.1.0';

/**
 * The `emr-7.x` and older releases ship Spark 3.5 (or older) and Python 3.9 as default: the jobs'
 * pinned pyspark 4 code and numpy 2.3 cannot run there, so such labels are refused up front rather
 * than after a cluster has started and every step has failed.
 */
const SPARK4_RELEASE = /^emr-spark-(\d+)\.\d+\.\d+$/;

/** Where the bootstrap action builds the jobs' Python environment on every node. */
export const EMR_NODE_VENV = '/opt/lensflow/venv';

/** An EMR configuration classification (spark-defaults, yarn-site, …), as RunJobFlow takes it. */
export const EmrConfiguration = z.object({
  classification: z.string().min(1),
  properties: z.record(z.string(), z.string()).default({}),
});

/** An extra bootstrap action, run on every node after lensflow's own venv bootstrap. */
export const EmrBootstrapAction = z.object({
  name: z.string().min(1).max(256),
  /** The script, `s3://…`. */
  path: z.string().regex(/^s3:\/\//, 'a bootstrap script is an s3:// URI'),
  args: z.array(z.string()).default([]),
});

/**
 * Core capacity as an instance fleet: EMR picks among `instanceTypes` where capacity is available,
 * on Spot when `spot` (On-Demand otherwise). Without fleets, uniform instance groups of
 * `instanceType` are used (core nodes on Spot when `spot`).
 */
export const EmrInstanceFleets = z.object({
  primaryInstanceTypes: z.array(z.string().min(1)).min(1).max(30),
  coreInstanceTypes: z.array(z.string().min(1)).min(1).max(30),
  /** Core capacity in units (1 unit = 1 instance of any listed type). */
  coreCapacity: z.number().int().min(1).max(100),
});

/**
 * A transient cluster the pipeline creates for one run and terminates at its end and on cancel.
 * Names are EMR's where they exist; what a real account must provide is `logUri` and, outside the
 * default VPC, `subnetIds` (and the security groups of that VPC).
 */
export const EmrTransientSpec = z.object({
  releaseLabel: z.string().default(DEFAULT_RELEASE_LABEL).refine(
    (l) => SPARK4_RELEASE.test(l) && Number(SPARK4_RELEASE.exec(l)![1]) >= 8,
    { error: (iss) => `releaseLabel ${String(iss.input)} does not ship Spark 4 with Python ≥ 3.11, which the jobs need: use ${DEFAULT_RELEASE_LABEL} (or a newer emr-spark-8.x)` },
  ),
  instanceType: z.string().default('m5.xlarge'),
  instanceCount: z.number().int().min(1).max(100).default(3),
  /** Instead of `instanceType`/`instanceCount`: instance fleets (several types, Spot-friendly). */
  instanceFleets: EmrInstanceFleets.optional(),
  /** Core nodes on Spot (cheaper, may be reclaimed; the pipeline retries the steps of a lost node). */
  spot: z.boolean().default(false),
  /** gp3 EBS root volume per node, GiB (checkpoints and shuffle live on HDFS and local disk). */
  ebsSizeGb: z.number().int().min(15).max(1_024).default(64),
  /** S3 folder for cluster and step logs (a failed step's error is read from here). */
  logUri: z.string().regex(/^s3:\/\//, 'logUri is an s3:// folder'),
  /** EMR's service role; `EMR_DefaultRole_V2` is what EMR now creates (see deploy/aws/). */
  serviceRole: z.string().min(1).default('EMR_DefaultRole_V2'),
  /** The EC2 instance profile of the nodes (replaces the deprecated `EMR_EC2_DefaultRole`). */
  instanceProfile: z.string().min(1).default('lensflow-emr-instance-profile'),
  /** Subnet(s) of the nodes; with fleets EMR picks one of several. Unset: the default VPC. */
  subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/)).default([]),
  /** EMR-managed security groups of the primary and core nodes, and (private subnets) for service access. */
  primarySecurityGroup: z.string().regex(/^sg-[0-9a-f]+$/).optional(),
  coreSecurityGroup: z.string().regex(/^sg-[0-9a-f]+$/).optional(),
  serviceAccessSecurityGroup: z.string().regex(/^sg-[0-9a-f]+$/).optional(),
  /** EMR terminates the cluster after this long idle: the backstop if the pipeline never does. */
  idleTimeoutSeconds: z.number().int().min(60).max(604_800).default(3_600),
  /** Extra cluster tags (cost allocation); `lensflow:run-id` is always added. */
  tags: z.record(z.string(), z.string()).default({}),
  bootstrapActions: z.array(EmrBootstrapAction).default([]),
  /** Extra configuration classifications; `spark-defaults` here is merged over lensflow's. */
  configurations: z.array(EmrConfiguration).default([]),
});
export type EmrTransientSpec = z.infer<typeof EmrTransientSpec>;

/**
 * Where Spark steps run.
 * - `local`: spark-submit on the worker's machine (`--master local[*]`), the default.
 * - `emr`: an EMR cluster; `clusterId` of an existing cluster, or a transient one the pipeline
 *   creates from `transient` and terminates at the end and on cancel.
 */
export const RunnerSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local') }),
  z.object({
    kind: z.literal('emr'),
    clusterId: z.string().regex(/^j-[A-Z0-9]+$/).optional(),
    transient: EmrTransientSpec.optional(),
    /** Steps EMR may run at once (StepConcurrencyLevel); the pipeline sets it from `maxConcurrentSteps`. */
    stepConcurrencyLevel: z.number().int().min(1).max(256).optional(),
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
