/**
 * The EMR runner and cluster activities against the EMR test server, which runs each step for real
 * on local Spark and keeps step logs in the stack's S3 server. Three real Spark runs: one that
 * completes (through a lost attempt and transient faults), one that fails, one that is cancelled.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AddJobFlowStepsCommand, CancelStepsCommand, DescribeClusterCommand, ListStepsCommand, RunJobFlowCommand, type EMRClient } from '@aws-sdk/client-emr';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { CleanResult } from '../src/contracts/jobResults';
import type { StepHandle } from '../src/contracts/runner';
import type { SparkStep } from '../src/contracts/sparkStep';
import { createTransientCluster, findClusterByRunTag, RUN_ID_TAG, terminateCluster, transientClusterName } from '../src/activities/emrCluster';
import { createEmrClient, createEmrRunner, stepStderrUri, type EmrRunnerOptions } from '../src/activities/emrRunner';
import { publishJobPackage } from '../src/activities/jobPackage';
import { readResult } from '../src/activities/runSparkStep';
import { createS3Client } from '../src/activities/s3Client';
import type { StepContext } from '../src/activities/sparkRunner';
import { buildSparkStep, type JobPackage } from '../src/activities/sparkSteps';
import { EmrTestServer, liveGroupMembers, liveProcessesMatching } from './emr/emrTestServer';
import { stackSettings, uniquePrefix } from './helpers/stack';

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
  const r = createEmrRunner(emr, s3, clusterId, { pollMs: POLL_MS, logWaitMs: 2_000, logger: { warn: (m) => warnings.push(m) }, ...opts });
  return { runner: r, warnings };
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
  emr = createEmrClient({
    region: 'us-east-1',
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
  const configurations = [{ Classification: 'spark-defaults', Properties: { 'spark.sql.shuffle.partitions': '2' } }];
  ({ clusterId } = await createTransientCluster(emr, { logUri }, unique('steps'), { pollMs: 50, configurations }));
});

afterAll(async () => {
  await closeServer?.();
  emr?.destroy();
  s3.destroy();
});

describe('transient clusters', () => {
  test('createTransientCluster starts a tagged, kept-alive Spark cluster, waits for it, and reuses it on retry; terminate is idempotent', async () => {
    const runId = unique('run');
    const states: (string | undefined)[] = [];
    const spec = { logUri, releaseLabel: 'emr-7.12.0', instanceCount: 2, subnetId: 'subnet-0abc' };
    const created = await createTransientCluster(emr, spec, runId, { pollMs: 50, heartbeat: (p) => states.push(p.state) });
    expect(created.reused).toBe(false);
    expect(created.clusterId).toMatch(/^j-[A-Z0-9]+$/);
    expect(states.at(-1)).toBe('WAITING');
    expect(states).toContain('STARTING');

    const runJobFlows = server.calls.filter((c) => c.operation === 'RunJobFlow' && c.input.Name === transientClusterName(runId));
    expect(runJobFlows).toHaveLength(1);
    expect(runJobFlows[0]!.input).toMatchObject({
      Name: `lensflow-${runId}`,
      ReleaseLabel: 'emr-7.12.0',
      Applications: [{ Name: 'Spark' }],
      LogUri: logUri,
      ServiceRole: 'EMR_DefaultRole',
      JobFlowRole: 'EMR_EC2_DefaultRole',
      VisibleToAllUsers: true,
      Instances: { InstanceCount: 2, KeepJobFlowAliveWhenNoSteps: true, TerminationProtected: false, Ec2SubnetId: 'subnet-0abc', MasterInstanceType: 'm5.xlarge' },
      Tags: [{ Key: RUN_ID_TAG, Value: runId }],
    });

    // A retried activity finds the run's cluster by its tag instead of starting a second one.
    expect(await findClusterByRunTag(emr, runId)).toBe(created.clusterId);
    expect(await findClusterByRunTag(emr, unique('other-run'))).toBeUndefined();
    const again = await createTransientCluster(emr, spec, runId, { pollMs: 50 });
    expect(again).toEqual({ clusterId: created.clusterId, reused: true });
    expect(server.calls.filter((c) => c.operation === 'RunJobFlow' && c.input.Name === transientClusterName(runId))).toHaveLength(1);

    expect(await terminateCluster(emr, created.clusterId)).toEqual({ previousState: 'WAITING', requested: true });
    await waitFor('termination', async () => (await clusterState(created.clusterId)) === 'TERMINATED');
    expect(await terminateCluster(emr, created.clusterId)).toEqual({ previousState: 'TERMINATED', requested: false });
    expect(server.calls.filter((c) => c.operation === 'TerminateJobFlows' && (c.input.JobFlowIds as string[])[0] === created.clusterId)).toHaveLength(1);

    // An ended cluster is not reused: the next attempt starts a fresh one.
    expect(await findClusterByRunTag(emr, runId)).toBeUndefined();
    const fresh = await createTransientCluster(emr, spec, runId, { pollMs: 50 });
    expect(fresh.reused).toBe(false);
    expect(fresh.clusterId).not.toBe(created.clusterId);
    await terminateCluster(emr, fresh.clusterId);
  });

  test('a cluster that fails to bootstrap is a non-retryable EmrClusterFailed naming the reason', async () => {
    server.failNextClusterStart({ Code: 'BOOTSTRAP_FAILURE', Message: 'bootstrap action 1 returned a non-zero return code' });
    const err = await createTransientCluster(emr, { logUri }, unique('bad'), { pollMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'EmrClusterFailed', nonRetryable: true });
    expect((err as Error).message).toMatch(/ended \((TERMINATING|TERMINATED_WITH_ERRORS)\) before it was ready: BOOTSTRAP_FAILURE: bootstrap action 1/);
  });
});

describe('steps that never start (no Spark run)', () => {
  let slowCluster: string;

  beforeAll(async () => {
    // A cluster that stays STARTING, so its steps stay PENDING.
    server.clusterStartupMs = 600_000;
    const res = await emr.send(new RunJobFlowCommand({ Name: unique('slow'), LogUri: logUri, Instances: { KeepJobFlowAliveWhenNoSteps: true } }));
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
  const { clusterId: gone } = await createTransientCluster(emr, { logUri }, unique('gone'), { pollMs: 50 });
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
    expect(message).toMatch(/AnalysisException: \[PATH_NOT_FOUND\] Path does not exist: s3a:\/\/\S*no-such-folder\/ratings\.csv/);
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

  test('cancelling a RUNNING step calls CancelSteps and its spark-submit process group is gone within 10 s', async () => {
    const runId = unique('cancel');
    const { step } = cleanStep(runId);
    const appName = `lensflow-clean-${runId}`;
    const controller = new AbortController();
    const { ctx, beats } = stepContext({ signal: controller.signal });
    const run = runner().runner.run(step, ctx);
    const { stepId } = await waitFor('the first heartbeat', () => beats[0] as Extract<StepHandle, { kind: 'emr' }> | undefined);
    const pgid = await waitFor('spark-submit to start', () => server.stepProcessGroup(clusterId, stepId));
    // Cancel once the whole tree is up: the JVM (its command line carries the unique --name) and
    // the Python driver it started, both in the step's process group.
    await waitFor('the Spark JVM and its Python driver', () => {
      const group = liveGroupMembers(pgid);
      return group.some((p) => /\bjava\b/.test(p.cmdline) && p.cmdline.includes(appName))
        && group.some((p) => /\/python[\d.]* /.test(p.cmdline) && p.cmdline.includes('clean.py'));
    }, 180_000);
    expect(server.stepState(clusterId, stepId)).toBe('RUNNING');

    const cancelledBy = new Error('activity cancelled (test)');
    const t0 = Date.now();
    controller.abort(cancelledBy);
    await expect(run).rejects.toBe(cancelledBy);
    await waitFor('the process group to end', () => liveGroupMembers(pgid).length === 0 && liveProcessesMatching(appName).length === 0, 10_000);
    expect(Date.now() - t0).toBeLessThan(10_000);

    expect(server.calls.filter((c) => c.operation === 'CancelSteps').at(-1)!.input).toEqual({
      ClusterId: clusterId, StepIds: [stepId], StepCancellationOption: 'SEND_INTERRUPT',
    });
    expect(server.stepState(clusterId, stepId)).toBe('CANCELLED');
  }, SPARK_TEST_MS);
});
