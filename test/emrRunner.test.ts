/**
 * The EMR runner and cluster activities against the EMR test server, which runs each step for real
 * on local Spark and keeps step logs in the stack's S3 server, and is as strict as EMR where a run
 * could pass here and fail there (signatures, release labels, bootstrap and Python, step
 * concurrency, cluster-mode cancel, late logs). Three real Spark runs: one that completes (through a
 * lost attempt and transient faults), one that fails, one that is cancelled.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AddJobFlowStepsCommand, CancelStepsCommand, DescribeClusterCommand, ListStepsCommand, RunJobFlowCommand, type EMRClient } from '@aws-sdk/client-emr';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { CleanResult } from '../src/contracts/jobResults';
import { EmrTransientSpec, type StepHandle } from '../src/contracts/runner';
import type { SparkStep } from '../src/contracts/sparkStep';
import { createTransientCluster, findClusterByRunTag, MANAGED_TAG, RUN_ID_TAG, runJobFlowInput, terminateCluster, transientClusterName } from '../src/activities/emrCluster';
import { createEmrClient, createEmrRunner, emrConsoleUrl, stepStderrUri, type EmrRunnerOptions } from '../src/activities/emrRunner';
import { publishJobPackage } from '../src/activities/jobPackage';
import { readResult } from '../src/activities/runSparkStep';
import { createS3Client } from '../src/activities/s3Client';
import type { StepContext } from '../src/activities/sparkRunner';
import { buildSparkStep, type JobPackage } from '../src/activities/sparkSteps';
import { EmrTestServer, liveGroupMembers, liveProcessesMatching } from './emr/emrTestServer';
import { s3Snapshot, stackSettings, uniquePrefix } from './helpers/stack';

// Nothing here may reach for the instance-metadata address (not loopback).
process.env.AWS_EC2_METADATA_DISABLED = 'true';
const settings = stackSettings();
const s3 = createS3Client(settings.s3);
const bucket = settings.s3.bucket;
const prefix = uniquePrefix('emr');
const logUri = `s3://${bucket}/${prefix}/emr-logs/`;
const rawUri = `s3://${bucket}/${prefix}/raw/tiny-latest/`;
const POLL_MS = 200;

let server: EmrTestServer;
let endpoint: string;
let closeServer: () => Promise<void>;
let emr: EMRClient;
let pkg: JobPackage;
let clusterId: string;

const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

/** A StepContext that records heartbeats, as the activity's Context would. */
function stepContext(opts: { resume?: StepHandle; signal?: AbortSignal } = {}) {
  const beats: StepHandle[] = [];
  const ctx: StepContext = {
    logName: 'emr-test',
    heartbeat: (h) => beats.push(h),
    cancelled: opts.signal ?? new AbortController().signal,
    resume: opts.resume,
  };
  return { ctx, beats };
}

function runner(opts: EmrRunnerOptions = {}) {
  const warnings: string[] = [];
  const r = createEmrRunner(emr, s3, clusterId, { pollMs: POLL_MS, logWaitMs: 10_000, logger: { warn: (m) => warnings.push(m) }, ...opts });
  return { runner: r, warnings };
}

/** A client signing for `region` with `credentials` (the environment's keys unless given). */
function clientFor(endpoint: string, region: string, credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! }) {
  return createEmrClient({ region, endpoint, credentials, maxAttempts: 1 });
}

/** Every object under `keyPrefix` with its ETag and modification time. */
const snapshot = (keyPrefix: string) => s3Snapshot(s3, bucket, keyPrefix);

/** The process group of a process, from /proc; undefined once it has exited (spark-submit's launcher JVM exits at once). */
function processGroupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

function cleanStep(runId: string, raw = rawUri): { step: SparkStep; resultUri: string } {
  const resultUri = `s3://${bucket}/${prefix}/runs/${runId}/results/clean.json`;
  const step = buildSparkStep('clean', runId, pkg, { dataset: 'ml-latest-small', raw, output: `s3://${bucket}/${prefix}/runs/${runId}/processed` }, resultUri);
  return { step, resultUri };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function clusterState(id: string): Promise<string | undefined> {
  return (await emr.send(new DescribeClusterCommand({ ClusterId: id }))).Cluster?.Status?.State;
}

async function stepCount(cluster: string): Promise<number> {
  return (await emr.send(new ListStepsCommand({ ClusterId: cluster }))).Steps?.length ?? 0;
}

beforeAll(async () => {
  server = new EmrTestServer({ settings, s3 });
  const started = await server.start();
  closeServer = started.close;
  endpoint = started.endpoint;
  server.logDelayMs = 1_500;
  emr = createEmrClient({
    region: settings.emr.region,
    endpoint: started.endpoint,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
    maxAttempts: 2,
  });
  pkg = await publishJobPackage(s3, settings.spark, bucket, prefix);
  const fixture = join(__dirname, '..', 'spark', 'tests', 'fixtures', 'tiny-latest');
  for (const name of ['ratings.csv', 'movies.csv']) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/raw/tiny-latest/${name}`, Body: readFileSync(join(fixture, name)) }));
  }
  // Tiny data: a handful of shuffle partitions instead of Spark's 200 (a Parquet part file each).
  const configurations = [{ classification: 'spark-defaults', properties: { 'spark.sql.shuffle.partitions': '2' } }];
  ({ clusterId } = await createTransientCluster(emr, { logUri, configurations }, unique('steps'), { pollMs: 50, codeUri: pkg.codeUri }));
});

afterAll(async () => {
  await closeServer?.();
  emr?.destroy();
  s3.destroy();
});

describe('transient clusters', () => {
  test('createTransientCluster starts a tagged, kept-alive Spark 4 cluster that bootstraps the jobs\' venv, waits for it, and reuses it on retry; terminate is idempotent', async () => {
    const runId = unique('run');
    const states: (string | undefined)[] = [];
    const spec = { logUri, instanceCount: 2, subnetIds: ['subnet-0abc'], tags: { team: 'recsys' } };
    const opts = { pollMs: 50, codeUri: pkg.codeUri, stepConcurrencyLevel: 2 };
    const created = await createTransientCluster(emr, spec, runId, { ...opts, heartbeat: (p) => states.push(p.state) });
    expect(created.reused).toBe(false);
    expect(created.clusterId).toMatch(/^j-[A-Z0-9]+$/);
    expect(states.at(-1)).toBe('WAITING');
    expect(states).toContain('STARTING');

    const runJobFlows = server.calls.filter((c) => c.operation === 'RunJobFlow' && c.input.Name === transientClusterName(runId));
    expect(runJobFlows).toHaveLength(1);
    const python = '/opt/lensflow/venv/bin/python';
    expect(runJobFlows[0]!.input).toMatchObject({
      Name: `lensflow-${runId}`,
      ReleaseLabel: 'emr-spark-8.1.0',
      Applications: [{ Name: 'Spark' }],
      LogUri: logUri,
      ServiceRole: 'EMR_DefaultRole_V2',
      JobFlowRole: 'lensflow-emr-instance-profile',
      VisibleToAllUsers: true,
      StepConcurrencyLevel: 2,
      Instances: {
        KeepJobFlowAliveWhenNoSteps: true, TerminationProtected: false, Ec2SubnetId: 'subnet-0abc',
        InstanceGroups: [
          expect.objectContaining({ InstanceRole: 'MASTER', InstanceCount: 1, InstanceType: 'm5.xlarge', Market: 'ON_DEMAND' }),
          expect.objectContaining({ InstanceRole: 'CORE', InstanceCount: 1, Market: 'ON_DEMAND' }),
        ],
      },
      BootstrapActions: [{
        Name: 'lensflow job environment',
        ScriptBootstrapAction: {
          Path: `${pkg.codeUri}bootstrap/emr-bootstrap-venv.sh`,
          Args: [`${pkg.codeUri}bootstrap/requirements.txt`, `${pkg.codeUri}bootstrap/constraints.txt`, '/opt/lensflow/venv'],
        },
      }],
      Configurations: [{ Classification: 'spark-defaults', Properties: { 'spark.pyspark.python': python, 'spark.pyspark.driver.python': python } }],
      AutoTerminationPolicy: { IdleTimeout: 3_600 },
      Tags: [{ Key: 'team', Value: 'recsys' }, { Key: MANAGED_TAG, Value: 'true' }, { Key: RUN_ID_TAG, Value: runId }],
    });
    // The server fetched the published script and its pins from S3, and checked the script parses.
    expect(server.clusterFacts(created.clusterId)).toMatchObject({ nodeDirs: ['/opt/lensflow/venv'], stepConcurrencyLevel: 2 });

    // A retried activity finds the run's cluster by its tag instead of starting a second one.
    expect(await findClusterByRunTag(emr, runId)).toBe(created.clusterId);
    expect(await findClusterByRunTag(emr, unique('other-run'))).toBeUndefined();
    const again = await createTransientCluster(emr, spec, runId, opts);
    expect(again).toEqual({ clusterId: created.clusterId, reused: true });
    expect(server.calls.filter((c) => c.operation === 'RunJobFlow' && c.input.Name === transientClusterName(runId))).toHaveLength(1);

    expect(await terminateCluster(emr, created.clusterId)).toEqual({ previousState: 'WAITING', requested: true });
    await waitFor('termination', async () => (await clusterState(created.clusterId)) === 'TERMINATED');
    expect(await terminateCluster(emr, created.clusterId)).toEqual({ previousState: 'TERMINATED', requested: false });
    expect(server.calls.filter((c) => c.operation === 'TerminateJobFlows' && (c.input.JobFlowIds as string[])[0] === created.clusterId)).toHaveLength(1);

    // An ended cluster is not reused: the next attempt starts a fresh one.
    expect(await findClusterByRunTag(emr, runId)).toBeUndefined();
    const fresh = await createTransientCluster(emr, spec, runId, opts);
    expect(fresh.reused).toBe(false);
    expect(fresh.clusterId).not.toBe(created.clusterId);
    await terminateCluster(emr, fresh.clusterId);
  });

  test('a cluster that fails to bootstrap is a non-retryable EmrClusterFailed naming the reason', async () => {
    server.failNextClusterStart({ Code: 'BOOTSTRAP_FAILURE', Message: 'bootstrap action 1 returned a non-zero return code' });
    const err = await createTransientCluster(emr, { logUri }, unique('bad'), { pollMs: 50, codeUri: pkg.codeUri }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'EmrClusterFailed', nonRetryable: true });
    expect((err as Error).message).toMatch(/ended \((TERMINATING|TERMINATED_WITH_ERRORS)\) before it was ready: BOOTSTRAP_FAILURE: bootstrap action 1/);
  });

  test('a bootstrap script that is not in S3 fails the cluster with BOOTSTRAP_FAILURE, as on EMR', async () => {
    const err = await createTransientCluster(emr, { logUri }, unique('nobootstrap'), { pollMs: 50, codeUri: `s3://${bucket}/${prefix}/code/nowhere/` })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'EmrClusterFailed', nonRetryable: true });
    expect((err as Error).message).toContain('BOOTSTRAP_FAILURE: Master instance (i-0test) failed attempting to download bootstrap action 1 file from S3');
  });

  test('the spec refuses a release whose Spark the jobs cannot run, naming the one to use', () => {
    const parsed = EmrTransientSpec.safeParse({ logUri, releaseLabel: 'emr-7.12.0' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toBe('releaseLabel emr-7.12.0 does not ship Spark 4 with Python ≥ 3.11, which the jobs need: use emr-spark-8.1.0 (or a newer emr-spark-8.x)');
  });

  test('instance fleets put core capacity on Spot across several types and subnets; the primary stays On-Demand', () => {
    const spec = EmrTransientSpec.parse({
      logUri, spot: true, ebsSizeGb: 128, subnetIds: ['subnet-0a', 'subnet-0b'], idleTimeoutSeconds: 900,
      primarySecurityGroup: 'sg-01', coreSecurityGroup: 'sg-02', serviceAccessSecurityGroup: 'sg-03',
      instanceFleets: { primaryInstanceTypes: ['m5.xlarge', 'm6i.xlarge'], coreInstanceTypes: ['r5.2xlarge', 'r6i.2xlarge'], coreCapacity: 4 },
    });
    const input = runJobFlowInput(spec, 'r1', { codeUri: pkg.codeUri });
    const ebs = { EbsBlockDeviceConfigs: [{ VolumeSpecification: { VolumeType: 'gp3', SizeInGB: 128 }, VolumesPerInstance: 1 }] };
    expect(input.Instances).toEqual({
      KeepJobFlowAliveWhenNoSteps: true, TerminationProtected: false, Ec2SubnetIds: ['subnet-0a', 'subnet-0b'],
      EmrManagedMasterSecurityGroup: 'sg-01', EmrManagedSlaveSecurityGroup: 'sg-02', ServiceAccessSecurityGroup: 'sg-03',
      InstanceFleets: [
        { Name: 'primary', InstanceFleetType: 'MASTER', TargetOnDemandCapacity: 1, InstanceTypeConfigs: [{ InstanceType: 'm5.xlarge', EbsConfiguration: ebs }, { InstanceType: 'm6i.xlarge', EbsConfiguration: ebs }] },
        { Name: 'core', InstanceFleetType: 'CORE', TargetOnDemandCapacity: 0, TargetSpotCapacity: 4, InstanceTypeConfigs: [{ InstanceType: 'r5.2xlarge', EbsConfiguration: ebs }, { InstanceType: 'r6i.2xlarge', EbsConfiguration: ebs }] },
      ],
    });
    expect(input.AutoTerminationPolicy).toEqual({ IdleTimeout: 900 });
    expect(() => runJobFlowInput(EmrTransientSpec.parse({ logUri, subnetIds: ['subnet-0a', 'subnet-0b'] }), 'r2', { codeUri: pkg.codeUri }))
      .toThrow('instance groups take one subnet');
  });
});

describe('as strict as EMR (no Spark run)', () => {
  test('requests signed for another region or service, with a wrong secret or an unknown key are refused with EMR\'s errors', async () => {
    const other = settings.emr.region === 'eu-west-1' ? 'us-east-1' : 'eu-west-1';
    const cases: [EMRClient, string, RegExp][] = [
      [clientFor(endpoint, other), 'InvalidSignatureException', new RegExp(`Credential should be scoped to a valid region, not '${other}'`)],
      [clientFor(endpoint, settings.emr.region, { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: 'not-the-secret' }), 'InvalidSignatureException', /signature we calculated does not match/],
      [clientFor(endpoint, settings.emr.region, { accessKeyId: 'AKIANOTKNOWN', secretAccessKey: 'x' }), 'UnrecognizedClientException', /security token included in the request is invalid/],
    ];
    for (const [client, name, message] of cases) {
      const err = await client.send(new DescribeClusterCommand({ ClusterId: clusterId })).catch((e: unknown) => e);
      expect(err).toMatchObject({ name });
      expect((err as Error).message).toMatch(message);
      client.destroy();
    }
    expect(server.calls.filter((c) => c.refused)).toHaveLength(3);
  });

  test('an unknown release label is refused by RunJobFlow; a known emr-7.x one starts but cannot run the jobs\' spark-submit', async () => {
    const bad = await emr.send(new RunJobFlowCommand({ Name: unique('nolabel'), ReleaseLabel: 'emr-9.9.9', Instances: {} })).catch((e: unknown) => e);
    expect(bad).toMatchObject({ name: 'ValidationException', message: 'The requested release label emr-9.9.9 is not valid.' });

    const old = await emr.send(new RunJobFlowCommand({ Name: unique('emr7'), ReleaseLabel: 'emr-7.12.0', LogUri: logUri, Instances: { KeepJobFlowAliveWhenNoSteps: true } }));
    await waitFor('the emr-7 cluster', async () => (await clusterState(old.JobFlowId!)) === 'WAITING');
    const { step } = cleanStep(unique('emr7'));
    const err = await createEmrRunner(emr, s3, old.JobFlowId!, { pollMs: POLL_MS, logWaitMs: 10_000 }).run(step, stepContext().ctx).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'SparkJobFailed' });
    expect((err as Error).message).toContain('ImportError: the jobs need Spark 4 and Python >= 3.11; emr-7.12.0 has Spark 3.5.6 and Python 3.9');
    await terminateCluster(emr, old.JobFlowId!);
  });

  test('a spark-submit step without the bootstrapped Python fails as on EMR, with the job\'s ModuleNotFoundError quoted', async () => {
    const bare = await emr.send(new RunJobFlowCommand({ Name: unique('bare'), ReleaseLabel: 'emr-spark-8.1.0', LogUri: logUri, Instances: { KeepJobFlowAliveWhenNoSteps: true } }));
    await waitFor('the bare cluster', async () => (await clusterState(bare.JobFlowId!)) === 'WAITING');
    const { step } = cleanStep(unique('bare'));
    const err = await createEmrRunner(emr, s3, bare.JobFlowId!, { pollMs: POLL_MS, logWaitMs: 10_000 }).run(step, stepContext().ctx).catch((e: unknown) => e);
    expect((err as Error).message).toContain("ModuleNotFoundError: No module named 'jsonschema' (EMR test server: spark.pyspark.python is not set");
    await terminateCluster(emr, bare.JobFlowId!);
  });

  test('StepConcurrencyLevel: above 1 only ActionOnFailure=CONTINUE is accepted, and that many steps run at once; the runner raises an existing cluster\'s level with ModifyCluster', async () => {
    const res = await emr.send(new RunJobFlowCommand({ Name: unique('level1'), ReleaseLabel: 'emr-spark-8.1.0', Instances: { KeepJobFlowAliveWhenNoSteps: true } }));
    const id = res.JobFlowId!;
    await waitFor('the cluster', async () => (await clusterState(id)) === 'WAITING');
    expect(server.clusterFacts(id)?.stepConcurrencyLevel).toBe(1);

    // Three 1.5 s steps through the runner, which was asked for level 2.
    const sleeper = (n: number): SparkStep => ({ name: unique(`sleep-${n}`), actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: ['sleep', '1.5'] } });
    const r = createEmrRunner(emr, s3, id, { pollMs: POLL_MS, stepConcurrencyLevel: 2 });
    await Promise.all([1, 2, 3].map((n) => r.run(sleeper(n), stepContext().ctx)));
    expect(server.calls.filter((c) => c.operation === 'ModifyCluster' && c.input.ClusterId === id).map((c) => c.input.StepConcurrencyLevel)).toEqual([2]);
    expect(server.clusterFacts(id)).toMatchObject({ stepConcurrencyLevel: 2, maxRunningSteps: 2 });

    const refused = await emr.send(new AddJobFlowStepsCommand({
      JobFlowId: id, Steps: [{ Name: 'x', ActionOnFailure: 'TERMINATE_CLUSTER', HadoopJarStep: { Jar: 'command-runner.jar', Args: ['true'] } }],
    })).catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: 'ValidationException' });
    expect((refused as Error).message).toMatch(/ActionOnFailure TERMINATE_CLUSTER is not valid .* only CONTINUE/);
    await terminateCluster(emr, id);
  });

  test('a failed step whose logs never arrive says so, with their S3 folder and the EMR console link', async () => {
    server.logDelayMs = Infinity;
    try {
      const step: SparkStep = { name: unique('nologs'), actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: ['bash', '-c', 'exit 3'] } };
      const { ctx, beats } = stepContext();
      const err = await runner({ logWaitMs: 1_500 }).runner.run(step, ctx).catch((e: unknown) => e);
      const { stepId } = beats[0] as Extract<StepHandle, { kind: 'emr' }>;
      expect(err).toMatchObject({ type: 'SparkJobFailed', nonRetryable: true });
      expect((err as Error).message).toContain(
        `The step's logs did not arrive within 2 s (EMR uploads them about every 5 minutes; LENSFLOW_EMR_LOG_WAIT_SECONDS waits longer). ` +
        `Look later under ${stepStderrUri(logUri, clusterId, stepId).replace(/stderr\.gz$/, '')} or in the EMR console: ${emrConsoleUrl(settings.emr.region, clusterId)}`,
      );
    } finally {
      server.logDelayMs = 1_500;
    }
  });
});

describe('steps that never start (no Spark run)', () => {
  let slowCluster: string;

  beforeAll(async () => {
    // A cluster that stays STARTING, so its steps stay PENDING.
    server.clusterStartupMs = 600_000;
    const res = await emr.send(new RunJobFlowCommand({ Name: unique('slow'), ReleaseLabel: 'emr-spark-8.1.0', LogUri: logUri, Instances: { KeepJobFlowAliveWhenNoSteps: true } }));
    server.clusterStartupMs = 300;
    slowCluster = res.JobFlowId!;
  });

  afterAll(async () => {
    await terminateCluster(emr, slowCluster);
  });

  test('without a heartbeat to resume, run() adopts the active step of the same name and args; cancelling a PENDING step cancels it', async () => {
    const { step } = cleanStep(unique('adopt'));
    const added = await emr.send(new AddJobFlowStepsCommand({
      JobFlowId: slowCluster,
      Steps: [{ Name: step.name, ActionOnFailure: step.actionOnFailure, HadoopJarStep: { Jar: step.hadoopJarStep.jar, Args: step.hadoopJarStep.args } }],
    }));
    const orphan = added.StepIds![0]!;
    const controller = new AbortController();
    const { ctx, beats } = stepContext({ signal: controller.signal });
    const addsBefore = server.calls.filter((c) => c.operation === 'AddJobFlowSteps').length;
    const r = createEmrRunner(emr, s3, slowCluster, { pollMs: POLL_MS, logger: { warn: () => undefined } });

    const run = r.run(step, ctx);
    await waitFor('the first heartbeat', () => beats.length > 0);
    expect(beats[0]).toEqual({ kind: 'emr', clusterId: slowCluster, stepId: orphan });
    const cancelledBy = new Error('activity cancelled (test)');
    controller.abort(cancelledBy);
    await expect(run).rejects.toBe(cancelledBy);

    expect(server.calls.filter((c) => c.operation === 'AddJobFlowSteps')).toHaveLength(addsBefore);
    expect(server.calls.filter((c) => c.operation === 'CancelSteps').at(-1)!.input).toEqual({
      ClusterId: slowCluster, StepIds: [orphan], StepCancellationOption: 'SEND_INTERRUPT',
    });
    expect(server.stepState(slowCluster, orphan)).toBe('CANCELLED');
  });

  test('a step cancelled by someone else is a non-retryable SparkStepCancelled', async () => {
    const { step } = cleanStep(unique('foreign-cancel'));
    const { ctx, beats } = stepContext();
    const r = createEmrRunner(emr, s3, slowCluster, { pollMs: POLL_MS, logger: { warn: () => undefined } });
    const run = r.run(step, ctx).catch((e: unknown) => e);
    const { stepId } = await waitFor('the first heartbeat', () => beats[0] as Extract<StepHandle, { kind: 'emr' }> | undefined);
    await emr.send(new CancelStepsCommand({ ClusterId: slowCluster, StepIds: [stepId] }));
    const err = await run;
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'SparkStepCancelled', nonRetryable: true });
    expect((err as Error).message).toContain(stepId);
  });
});

test('a step for a terminated cluster is a non-retryable EmrStepRejected (no Spark run)', async () => {
  const { clusterId: gone } = await createTransientCluster(emr, { logUri }, unique('gone'), { pollMs: 50, codeUri: pkg.codeUri });
  await terminateCluster(emr, gone);
  const { step } = cleanStep(unique('late'));
  const r = createEmrRunner(emr, s3, gone, { pollMs: POLL_MS });
  const err = await r.run(step, stepContext().ctx).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'EmrStepRejected', nonRetryable: true });
  expect((err as Error).message).toContain('may not be modified');
});

describe('steps on local Spark', () => {
  // A real Spark step takes 15–25 s on an idle 2-core machine, minutes on a busy one.
  const SPARK_TEST_MS = 300_000;

  afterEach(async () => {
    // A test that failed midway must not leave its step running ahead of the next test's.
    const active = await emr.send(new ListStepsCommand({ ClusterId: clusterId, StepStates: ['PENDING', 'RUNNING'] }));
    const ids = (active.Steps ?? []).map((s) => s.Id!);
    if (ids.length > 0) await emr.send(new CancelStepsCommand({ ClusterId: clusterId, StepIds: ids }));
  });

  test('a clean step completes and writes its result, through a lost attempt (resumed from its heartbeat) and transient DescribeStep faults', async () => {
    const runId = unique('ok');
    const { step, resultUri } = cleanStep(runId);

    // Attempt 1 adds the step, then DescribeStep only answers 500: after its bounded retries the
    // attempt fails with the transient error itself (retryable), and the step keeps running.
    server.injectFault('DescribeStep', 1_000, 'InternalServerError');
    const first = stepContext();
    const one = runner({ maxTransientErrors: 2 });
    const lost = await one.runner.run(step, first.ctx).catch((e: unknown) => e);
    server.clearFaults();
    expect(lost).not.toBeInstanceOf(ApplicationFailure);
    expect(lost).toMatchObject({ name: 'InternalServerError', $metadata: { httpStatusCode: 500 } });
    expect(one.warnings).toHaveLength(2);
    const handle = first.beats[0] as Extract<StepHandle, { kind: 'emr' }>;
    expect(handle).toEqual({ kind: 'emr', clusterId, stepId: expect.stringMatching(/^s-[A-Z0-9]+$/) });
    expect(['PENDING', 'RUNNING']).toContain(server.stepState(clusterId, handle.stepId));
    const stepsBefore = await stepCount(clusterId);

    // Attempt 2 resumes the same step from the heartbeat and rides out throttling, a connection
    // reset and a 500 (the SDK retries once per poll; the runner's loop retries the rest).
    server.injectFault('DescribeStep', 2, 'ThrottlingException');
    server.injectFault('DescribeStep', 1, 'ConnectionReset');
    server.injectFault('DescribeStep', 1, 'InternalServerError');
    const callsBefore = server.calls.length;
    const second = stepContext({ resume: handle });
    const two = runner();
    await two.runner.run(step, second.ctx);

    const attempt2 = server.calls.slice(callsBefore);
    expect(attempt2.filter((c) => c.fault).map((c) => c.fault)).toEqual(['ThrottlingException', 'ThrottlingException', 'ConnectionReset', 'InternalServerError']);
    expect(two.warnings.length).toBeGreaterThanOrEqual(1);
    expect(new Set(attempt2.map((c) => c.operation))).toEqual(new Set(['DescribeStep']));
    expect(attempt2.every((c) => c.input.StepId === handle.stepId)).toBe(true);
    expect(second.beats.length).toBeGreaterThan(1);
    expect(second.beats.every((b) => b.kind === 'emr' && b.stepId === handle.stepId)).toBe(true);
    expect(await stepCount(clusterId)).toBe(stepsBefore);
    expect(server.calls.filter((c) => c.operation === 'AddJobFlowSteps' && JSON.stringify(c.input).includes(runId))).toHaveLength(1);
    expect(server.stepState(clusterId, handle.stepId)).toBe('COMPLETED');

    // The result JSON the job wrote, valid under its contract (which also checks raw = clean + quarantined).
    // Which reason each dropped row gets is the clean job's business, pinned by its own tests.
    const result = CleanResult.parse(await readResult(s3, resultUri));
    expect(result.counts.ratings).toMatchObject({ raw: 6, clean: 3 });
    expect(result.counts.movies).toMatchObject({ raw: 3, clean: 2 });
    expect(result.outputs.ratings).toBe(`s3://${bucket}/${prefix}/runs/${runId}/processed/ratings`);
    expect(server.logUploadErrors).toEqual([]);
  }, SPARK_TEST_MS);

  test('a failing job is a non-retryable SparkJobFailed carrying the real error from the step\'s stderr.gz', async () => {
    const missing = `s3://${bucket}/${prefix}/raw/no-such-folder/`;
    const { step } = cleanStep(unique('fail'), missing);
    const { ctx, beats } = stepContext();
    const err = await runner().runner.run(step, ctx).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'SparkJobFailed', nonRetryable: true });
    const { stepId } = beats[0] as Extract<StepHandle, { kind: 'emr' }>;
    const message = (err as Error).message;
    const stderrUri = stepStderrUri(logUri, clusterId, stepId);
    expect(message).toMatch(/EMR: Unknown Error\. — .+/);
    // The job's own error: PySpark's driver writes its traceback to spark-submit's stdout.
    expect(message).toContain(`--- the job's error (${stderrUri.replace(/stderr\.gz$/, 'stdout.gz')}) ---\nTraceback (most recent call last):`);
    expect(message).toMatch(/InputFileError: MissingFile: s3a:\/\/\S*no-such-folder\/ratings\.csv: there is no such file\. Fix: /);
    // And the tail of stderr.gz, as stored in S3.
    expect(message).toContain(`--- ${stderrUri} (tail) ---`);
    const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: stderrUri.slice(`s3://${bucket}/`.length) }));
    const stderr = gunzipSync(Buffer.from(await stored.Body!.transformToByteArray())).toString('utf8');
    expect(stderr.length).toBeGreaterThan(8_000);
    expect(message.endsWith(stderr.slice(-8_000))).toBe(true);
  }, SPARK_TEST_MS);

  test('in cluster deploy mode the job\'s error comes from the driver container\'s logs that the step\'s stderr points to (no Spark run)', async () => {
    // What EMR keeps for a cluster-mode step: the YARN client's report in the step's stderr, the
    // driver's traceback in its container's stdout. The container logs are put where EMR would.
    const appId = `application_1700000000000_${String(Math.floor(Math.random() * 9_000) + 1_000)}`;
    const container = `${prefix}/emr-logs/${clusterId}/containers/${appId}/container_${appId.slice('application_'.length)}_01_000001/`;
    const traceback = 'Traceback (most recent call last):\n  File "clean.py", line 6, in <module>\nValueError: ratings out of range: 7.5';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${container}stdout.gz`, Body: gzipSync(`${traceback}\n26/11/24 10:00:00 INFO ShutdownHookManager: bye\n`) }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${container}stderr.gz`, Body: gzipSync('26/11/24 10:00:00 ERROR ApplicationMaster: User application exited with status 1\n') }));
    const report = `Exception in thread "main" org.apache.spark.SparkException: Application ${appId} finished with failed status`;
    const step: SparkStep = {
      name: unique('cluster-mode'),
      actionOnFailure: 'CONTINUE',
      hadoopJarStep: { jar: 'command-runner.jar', args: ['bash', '-c', `echo '${report}' >&2; exit 1`] },
    };
    const err = await runner().runner.run(step, stepContext().ctx).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'SparkJobFailed', nonRetryable: true });
    const message = (err as Error).message;
    expect(message).toContain(`--- the job's error (s3://${bucket}/${container}stdout.gz) ---\n${traceback}\n`);
    expect(message).not.toContain('ShutdownHookManager');
    expect(message).toContain(report);
  });

  test('cancelling a RUNNING step ends its Spark application: no process of it within 10 s, no write under the run\'s prefix after the cancel', async () => {
    const runId = unique('cancel');
    const { step } = cleanStep(runId);
    const appName = `lensflow-clean-${runId}`;
    const controller = new AbortController();
    const { ctx, beats } = stepContext({ signal: controller.signal });
    const run = runner().runner.run(step, ctx);
    const { stepId } = await waitFor('the first heartbeat', () => beats[0] as Extract<StepHandle, { kind: 'emr' }> | undefined);
    // Cancel once the whole application is up: the Spark JVM (its command line carries the unique
    // --name) and the Python driver it started, in the JVM's process group — wherever that is.
    const pgid = await waitFor('the Spark JVM and its Python driver', () => {
      const jvm = liveProcessesMatching(appName).find((p) => /\bjava\b/.test(p.cmdline));
      const group = jvm && processGroupOf(jvm.pid);
      return group !== undefined && liveGroupMembers(group).some((p) => /\/python[\d.]* /.test(p.cmdline) && p.cmdline.includes('clean.py')) && group;
    }, 180_000);
    expect(server.stepState(clusterId, stepId)).toBe('RUNNING');

    const cancelledBy = new Error('activity cancelled (test)');
    const t0 = Date.now();
    controller.abort(cancelledBy);
    await expect(run).rejects.toBe(cancelledBy);
    expect(server.stepState(clusterId, stepId)).toBe('CANCELLED');
    const atCancel = await snapshot(`${prefix}/runs/${runId}/`);
    // The application must be gone; a YARN application left behind would run on and write.
    const gone = await waitFor('the application to end', () => liveGroupMembers(pgid).length === 0 && liveProcessesMatching(appName).length === 0, 60_000)
      .then(() => Date.now() - t0, () => undefined);
    await new Promise((r) => setTimeout(r, 2_000));
    expect({ after: await snapshot(`${prefix}/runs/${runId}/`), goneWithinMs: (gone ?? Infinity) < 10_000 }).toEqual({ after: atCancel, goneWithinMs: true });

    expect(server.calls.filter((c) => c.operation === 'CancelSteps').at(-1)!.input).toEqual({
      ClusterId: clusterId, StepIds: [stepId], StepCancellationOption: 'SEND_INTERRUPT',
    });
  }, SPARK_TEST_MS);
});
