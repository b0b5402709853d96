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
  type BootstrapActionConfig,
  type ClusterState,
  type Configuration,
  type EMRClient,
} from '@aws-sdk/client-emr';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { EmrTransientSpec } from '../contracts/runner';
import { backoffMs, isTransientAwsError, sleep } from './emrRunner';

/** The tag that ties a cluster to the pipeline run that created it. */
export const RUN_ID_TAG = 'lensflow:run-id';

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
  bootstrapActions?: BootstrapActionConfig[];
  /** EMR configuration classifications, e.g. `spark-defaults` properties for every step. */
  configurations?: Configuration[];
  /** Called on every DescribeCluster poll while waiting (an activity heartbeats here). */
  heartbeat?: (progress: { clusterId: string; state?: string }) => void;
  /** Between DescribeCluster polls; 30 s by default (clusters take minutes to start). */
  pollMs?: number;
  /** Give up waiting after this long (retryably: a retry finds the cluster by tag and waits on). 30 min by default. */
  timeoutMs?: number;
  /** EMR terminates the cluster after this long idle: the backstop if the pipeline never terminates it. 1 h by default. */
  idleTimeoutSeconds?: number;
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
  opts: CreateClusterOptions = {},
): Promise<CreateClusterResult> {
  const spec = EmrTransientSpec.parse(rawSpec);
  const name = opts.name ?? transientClusterName(runId);
  const existing = await findClusterByRunTag(emr, runId, { name });
  let clusterId = existing;
  if (!clusterId) {
    const res = await emr.send(
      new RunJobFlowCommand({
        Name: name,
        ReleaseLabel: spec.releaseLabel,
        Applications: [{ Name: 'Spark' }],
        LogUri: spec.logUri,
        ServiceRole: spec.serviceRole,
        JobFlowRole: spec.jobFlowRole,
        VisibleToAllUsers: true,
        Instances: {
          MasterInstanceType: spec.instanceType,
          SlaveInstanceType: spec.instanceType,
          InstanceCount: spec.instanceCount,
          KeepJobFlowAliveWhenNoSteps: true,
          TerminationProtected: false,
          Ec2SubnetId: spec.subnetId,
        },
        BootstrapActions: opts.bootstrapActions,
        Configurations: opts.configurations,
        AutoTerminationPolicy: { IdleTimeout: opts.idleTimeoutSeconds ?? 3_600 },
        Tags: [{ Key: RUN_ID_TAG, Value: runId }],
      }),
    );
    if (!res.JobFlowId) throw new Error(`RunJobFlow for ${name} returned no cluster id`);
    clusterId = res.JobFlowId;
  }
  await waitForCluster(emr, clusterId, opts);
  return { clusterId, reused: existing !== undefined };
}

/** Polls DescribeCluster until the cluster accepts steps; see `createTransientCluster` for the failures. */
export async function waitForCluster(emr: EMRClient, clusterId: string, opts: CreateClusterOptions = {}): Promise<void> {
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
