/**
 * Transient EMR clusters for one pipeline run: create (or find again) a cluster tagged with the
 * run id, wait until it accepts steps, and terminate it. Plain async functions over an EMRClient,
 * meant to be wrapped as activities.
 *
 * RunJobFlow has no idempotency token: calling it twice starts two clusters. A retried activity
 * must therefore look for the cluster its previous attempt started, by the `lensflow:run-id` tag,
 * before starting another; `createTransientCluster` does that itself.
 */
import {
  DescribeClusterCommand,
  ListClustersCommand,
  RunJobFlowCommand,
  TerminateJobFlowsCommand,
  type ClusterState,
  type Configuration,
  type EbsConfiguration,
  type EMRClient,
  type JobFlowInstancesConfig,
  type RunJobFlowCommandInput,
} from '@aws-sdk/client-emr';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { EMR_NODE_VENV, EmrTransientSpec } from '../contracts/runner';
import { backoffMs, isTransientAwsError, sleep } from './emrRunner';
import { BOOTSTRAP_SCRIPT, CONSTRAINTS_FILE, REQUIREMENTS_FILE } from './jobPackage';

/** The tag that ties a cluster to the pipeline run that created it. */
export const RUN_ID_TAG = 'lensflow:run-id';
/** The tag the IAM policies in deploy/aws/ scope EMR actions to: lensflow acts only on clusters carrying it. */
export const MANAGED_TAG = 'lensflow:managed';

const ACTIVE_CLUSTER_STATES: ClusterState[] = ['STARTING', 'BOOTSTRAPPING', 'RUNNING', 'WAITING'];
const READY_STATES: ReadonlySet<ClusterState | undefined> = new Set<ClusterState | undefined>(['WAITING', 'RUNNING']);
const ENDED_STATES: ReadonlySet<ClusterState | undefined> = new Set<ClusterState | undefined>(['TERMINATING', 'TERMINATED', 'TERMINATED_WITH_ERRORS']);
/** Why a cluster could end before it was ready, where starting it again will not help. */
const PERMANENT_FAILURE_CODES = new Set(['VALIDATION_ERROR', 'BOOTSTRAP_FAILURE', 'USER_REQUEST']);

/** The deterministic cluster name of a run (EMR names need not be unique; the tag is what is looked up). */
export function transientClusterName(runId: string): string {
  return `lensflow-${runId}`.slice(0, 256);
}

export interface CreateClusterOptions {
  /** Defaults to `transientClusterName(runId)`. */
  name?: string;
  /** The published job package (`s3://…/code/<hash>/`): its bootstrap script builds the nodes' venv. */
  codeUri: string;
  /** Steps EMR runs at once (StepConcurrencyLevel); 1 by default, as on EMR. */
  stepConcurrencyLevel?: number;
  /** Called on every DescribeCluster poll while waiting (an activity heartbeats here). */
  heartbeat?: (progress: { clusterId: string; state?: string }) => void;
  /** Between DescribeCluster polls; 30 s by default (clusters take minutes to start). */
  pollMs?: number;
  /** Give up waiting after this long (retryably: a retry finds the cluster by tag and waits on). 30 min by default. */
  timeoutMs?: number;
  /** Transient DescribeCluster errors in a row that the wait survives. 8 by default. */
  maxTransientErrors?: number;
}

export interface CreateClusterResult {
  clusterId: string;
  /** True when an active cluster of this run already existed (a retried activity) and was used. */
  reused: boolean;
}

/**
 * The active cluster (STARTING, BOOTSTRAPPING, RUNNING or WAITING) tagged `lensflow:run-id=<runId>`,
 * if any. With `name`, only clusters of that name are described (one DescribeCluster per candidate,
 * which matters in a busy account).
 */
export async function findClusterByRunTag(emr: EMRClient, runId: string, opts: { name?: string } = {}): Promise<string | undefined> {
  let marker: string | undefined;
  do {
    const page = await emr.send(new ListClustersCommand({ ClusterStates: ACTIVE_CLUSTER_STATES, Marker: marker }));
    for (const summary of page.Clusters ?? []) {
      if (!summary.Id || (opts.name !== undefined && summary.Name !== opts.name)) continue;
      const { Cluster } = await emr.send(new DescribeClusterCommand({ ClusterId: summary.Id }));
      if (Cluster?.Tags?.some((t) => t.Key === RUN_ID_TAG && t.Value === runId)) return summary.Id;
    }
    marker = page.Marker;
  } while (marker);
  return undefined;
}

/**
 * Starts the run's transient cluster with RunJobFlow — or reuses the active one already tagged with
 * `runId` — and waits until it is WAITING or RUNNING. The cluster stays alive between steps
 * (KeepJobFlowAliveWhenNoSteps) until `terminateCluster`, or until EMR's idle auto-termination.
 *
 * Throws `EmrClusterFailed` when the cluster ends before it is ready: non-retryable for validation
 * and bootstrap failures, retryable for capacity and internal errors (a retry starts a new cluster,
 * since an ended one is not found by tag).
 */
export async function createTransientCluster(
  emr: EMRClient,
  rawSpec: z.input<typeof EmrTransientSpec>,
  runId: string,
  opts: CreateClusterOptions,
): Promise<CreateClusterResult> {
  const spec = EmrTransientSpec.parse(rawSpec);
  const name = opts.name ?? transientClusterName(runId);
  const existing = await findClusterByRunTag(emr, runId, { name });
  let clusterId = existing;
  if (!clusterId) {
    const res = await emr.send(new RunJobFlowCommand(runJobFlowInput(spec, runId, { ...opts, name })));
    if (!res.JobFlowId) throw new Error(`RunJobFlow for ${name} returned no cluster id`);
    clusterId = res.JobFlowId;
  }
  await waitForCluster(emr, clusterId, opts);
  return { clusterId, reused: existing !== undefined };
}

/**
 * The `spark-defaults` that make every step's Python the bootstrapped venv (driver in client deploy
 * mode, and executors), merged under the spec's own `spark-defaults`; other classifications as given.
 */
export function clusterConfigurations(spec: EmrTransientSpec): Configuration[] {
  const python = `${EMR_NODE_VENV}/bin/python`;
  const sparkDefaults: Record<string, string> = { 'spark.pyspark.python': python, 'spark.pyspark.driver.python': python };
  const others: Configuration[] = [];
  for (const c of spec.configurations) {
    if (c.classification === 'spark-defaults') Object.assign(sparkDefaults, c.properties);
    else others.push({ Classification: c.classification, Properties: c.properties });
  }
  return [{ Classification: 'spark-defaults', Properties: sparkDefaults }, ...others];
}

/** The nodes: instance fleets when the spec has them, else a primary and a core instance group. */
function clusterInstances(spec: EmrTransientSpec): JobFlowInstancesConfig {
  const ebs: EbsConfiguration = {
    EbsBlockDeviceConfigs: [{ VolumeSpecification: { VolumeType: 'gp3', SizeInGB: spec.ebsSizeGb }, VolumesPerInstance: 1 }],
  };
  const common: JobFlowInstancesConfig = {
    KeepJobFlowAliveWhenNoSteps: true,
    TerminationProtected: false,
    EmrManagedMasterSecurityGroup: spec.primarySecurityGroup,
    EmrManagedSlaveSecurityGroup: spec.coreSecurityGroup,
    ServiceAccessSecurityGroup: spec.serviceAccessSecurityGroup,
  };
  const fleets = spec.instanceFleets;
  if (fleets) {
    const typeConfigs = (types: string[]) => types.map((t) => ({ InstanceType: t, EbsConfiguration: ebs }));
    return {
      ...common,
      Ec2SubnetIds: spec.subnetIds.length ? spec.subnetIds : undefined,
      InstanceFleets: [
        // The primary node runs every step's driver (client deploy mode): never on Spot.
        { Name: 'primary', InstanceFleetType: 'MASTER', TargetOnDemandCapacity: 1, InstanceTypeConfigs: typeConfigs(fleets.primaryInstanceTypes) },
        {
          Name: 'core',
          InstanceFleetType: 'CORE',
          TargetOnDemandCapacity: spec.spot ? 0 : fleets.coreCapacity,
          TargetSpotCapacity: spec.spot ? fleets.coreCapacity : 0,
          InstanceTypeConfigs: typeConfigs(fleets.coreInstanceTypes),
        },
      ],
    };
  }
  if (spec.subnetIds.length > 1) {
    throw ApplicationFailure.nonRetryable('instance groups take one subnet: give one of subnetIds, or instanceFleets to let EMR choose', 'InvalidInput');
  }
  const groups: JobFlowInstancesConfig['InstanceGroups'] = [
    { Name: 'primary', InstanceRole: 'MASTER', Market: 'ON_DEMAND', InstanceType: spec.instanceType, InstanceCount: 1, EbsConfiguration: ebs },
  ];
  if (spec.instanceCount > 1) {
    groups.push({
      Name: 'core', InstanceRole: 'CORE', Market: spec.spot ? 'SPOT' : 'ON_DEMAND',
      InstanceType: spec.instanceType, InstanceCount: spec.instanceCount - 1, EbsConfiguration: ebs,
    });
  }
  return { ...common, Ec2SubnetId: spec.subnetIds[0], InstanceGroups: groups };
}

/**
 * RunJobFlow's input for a run's transient cluster: Spark on the spec's release, the venv bootstrap
 * from the job package on every node, the spark-defaults that point Python at it, the run and
 * managed tags (the IAM policies require the latter), and EMR's idle auto-termination as backstop.
 */
export function runJobFlowInput(spec: EmrTransientSpec, runId: string, opts: CreateClusterOptions): RunJobFlowCommandInput {
  return {
    Name: opts.name ?? transientClusterName(runId),
    ReleaseLabel: spec.releaseLabel,
    Applications: [{ Name: 'Spark' }],
    LogUri: spec.logUri,
    ServiceRole: spec.serviceRole,
    JobFlowRole: spec.instanceProfile,
    VisibleToAllUsers: true,
    Instances: clusterInstances(spec),
    StepConcurrencyLevel: opts.stepConcurrencyLevel ?? 1,
    BootstrapActions: [
      {
        Name: 'lensflow job environment',
        ScriptBootstrapAction: {
          Path: opts.codeUri + BOOTSTRAP_SCRIPT,
          Args: [opts.codeUri + REQUIREMENTS_FILE, opts.codeUri + CONSTRAINTS_FILE, EMR_NODE_VENV],
        },
      },
      ...spec.bootstrapActions.map((b) => ({ Name: b.name, ScriptBootstrapAction: { Path: b.path, Args: b.args } })),
    ],
    Configurations: clusterConfigurations(spec),
    AutoTerminationPolicy: { IdleTimeout: spec.idleTimeoutSeconds },
    Tags: [
      ...Object.entries(spec.tags).map(([Key, Value]) => ({ Key, Value })),
      { Key: MANAGED_TAG, Value: 'true' },
      { Key: RUN_ID_TAG, Value: runId },
    ],
  };
}

/** Polls DescribeCluster until the cluster accepts steps; see `createTransientCluster` for the failures. */
export async function waitForCluster(emr: EMRClient, clusterId: string, opts: Omit<CreateClusterOptions, 'codeUri'> = {}): Promise<void> {
  const pollMs = opts.pollMs ?? 30_000;
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  const maxFailures = opts.maxTransientErrors ?? 8;
  let failures = 0;
  for (;;) {
    let state: ClusterState | undefined;
    let reason: { Code?: string; Message?: string } | undefined;
    try {
      const { Cluster } = await emr.send(new DescribeClusterCommand({ ClusterId: clusterId }));
      state = Cluster?.Status?.State;
      reason = Cluster?.Status?.StateChangeReason;
      failures = 0;
    } catch (err) {
      if (!isTransientAwsError(err) || ++failures > maxFailures) throw err;
      opts.heartbeat?.({ clusterId });
      await sleep(backoffMs(pollMs, failures));
      continue;
    }
    opts.heartbeat?.({ clusterId, state });
    if (READY_STATES.has(state)) return;
    if (ENDED_STATES.has(state)) {
      const why = [reason?.Code, reason?.Message].filter(Boolean).join(': ') || 'no reason given';
      const message = `EMR cluster ${clusterId} ended (${state}) before it was ready: ${why}`;
      throw PERMANENT_FAILURE_CODES.has(reason?.Code ?? '')
        ? ApplicationFailure.nonRetryable(message, 'EmrClusterFailed', { clusterId, state, reason })
        : ApplicationFailure.retryable(message, 'EmrClusterFailed', { clusterId, state, reason });
    }
    if (Date.now() >= deadline) throw new Error(`EMR cluster ${clusterId} is still ${state} after ${opts.timeoutMs ?? 30 * 60_000} ms`);
    await sleep(pollMs);
  }
}

/**
 * Terminates the cluster (TerminateJobFlows, asynchronous). Idempotent: a cluster already
 * terminating or terminated is left alone. Returns the state it found.
 */
export async function terminateCluster(emr: EMRClient, clusterId: string): Promise<{ previousState?: ClusterState; requested: boolean }> {
  const { Cluster } = await emr.send(new DescribeClusterCommand({ ClusterId: clusterId }));
  const previousState = Cluster?.Status?.State;
  if (ENDED_STATES.has(previousState)) return { previousState, requested: false };
  await emr.send(new TerminateJobFlowsCommand({ JobFlowIds: [clusterId] }));
  return { previousState, requested: true };
}
