/**
 * The pipeline on the EMR runner: a worker whose EMR endpoint is the EMR-API test server, which
 * runs every step's spark-submit arguments on local Spark and is as strict as EMR (signatures,
 * bootstrap and Python, StepConcurrencyLevel, cluster-mode cancel, late logs). The run creates a
 * transient cluster that bootstraps the jobs' venv, adds each job as a step, two at a time, and
 * terminates the cluster at the end — and on cancel, after which nothing more is written. A run
 * whose step fails with late logs goes beside the first (it mostly waits for them).
 *
 * The same input then runs on the local runner behind a throttling S3 while its warm Spark engine
 * (the Python worker) is SIGKILLed mid-grid and restarted: it must complete with the EMR
 * run's outputs (the jobs are seeded), and nothing that had finished runs again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { PipelineSummary } from '../src/contracts/summary';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createS3Client } from '../src/activities/s3Client';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { progressQuery, trainingPipeline } from '../src/workflows';
import { EmrTestServer, liveProcessesMatching } from './emr/emrTestServer';
import { startFaultyS3Proxy } from './helpers/faultyS3Proxy';
import { s3Snapshot, stackSettings, temporalCli, uniquePrefix } from './helpers/stack';
import { shortLivedSubmitOpts } from './helpers/shortLivedJvm';
import { SMALL_RELEASE } from './helpers/smallRelease';
import { waitFor } from './helpers/waitFor';

// About 10 minutes on a quiet 2-core machine (each step is a fresh spark-submit JVM); more than 12
// under the load of three engineers' Spark: the deadline is generous, the suite's speed is bench's.
jest.setTimeout(30 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;
const prefix = uniquePrefix('emr-e2e');
const taskQueue = `e2e-emr-${randomBytes(3).toString('hex')}`;
/**
 * The largest relative difference between two documents' numbers; anything else (keys, strings,
 * integers, array lengths) must be equal, or it throws naming the path.
 */
function metricDrift(a: unknown, b: unknown, path = '$'): number {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (a !== b) throw new Error(`${path}: ${a} != ${b}`);
      return 0;
    }
    // Relative for magnitudes of 1 and more, absolute below: a metric that is zero up to rounding
    // (a constant predictor's explained variance, 4e-16 vs 8e-16) has no meaningful relative drift.
    return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1);
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) throw new Error(`${path}: ${a.length} items != ${b.length}`);
    return Math.max(0, ...a.map((x, i) => metricDrift(x, b[i], `${path}[${i}]`)));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a).sort();
    if (JSON.stringify(keys) !== JSON.stringify(Object.keys(b).sort())) throw new Error(`${path}: keys differ`);
    return Math.max(0, ...keys.map((k) => metricDrift((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)));
  }
  if (a !== b) throw new Error(`${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
  return 0;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s3 = createS3Client(settings.s3);

/** Every object under `keyPrefix` with its ETag and modification time. */
const snapshot = (keyPrefix: string) => s3Snapshot(s3, bucket, keyPrefix);

let server: EmrTestServer;
let closeServer: () => Promise<void>;
let worker: ChildProcess;
let client: Client;

beforeAll(async () => {
  server = new EmrTestServer({ settings });
  const started = await server.start();
  closeServer = started.close;
  worker = spawn('node', [join(__dirname, '..', 'dist', 'workers', 'main.js')], {
    env: { ...process.env, LENSFLOW_TASK_QUEUE: taskQueue, LENSFLOW_EMR_ENDPOINT: started.endpoint, LENSFLOW_EMR_POLL_SECONDS: '1' },
    stdio: 'ignore',
  });
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }) });
  lateFailure = startLateLogsRun();
});
afterAll(async () => {
  worker.kill('SIGTERM');
  await closeServer();
  await client.connection.close();
  s3.destroy();
});

let emrResult: PipelineSummary | undefined;

/** Activity id -> the attempt it finished on, from the recorded history. */
function attempts(workflowId: string): Record<string, number> {
  const history = JSON.parse(temporalCli(settings, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json'])) as {
    events: Array<{ eventId: string; activityTaskScheduledEventAttributes?: { activityId: string }; activityTaskStartedEventAttributes?: { scheduledEventId: string; attempt: number } }>;
  };
  const ids = new Map<string, string>();
  const out: Record<string, number> = {};
  for (const e of history.events) {
    if (e.activityTaskScheduledEventAttributes) ids.set(e.eventId, e.activityTaskScheduledEventAttributes.activityId);
    const started = e.activityTaskStartedEventAttributes;
    if (started) out[ids.get(String(started.scheduledEventId))!] = started.attempt;
  }
  return out;
}

const input = (runId: string) => ({
  // This file tests the EMR path and the engine's recovery, which cost the same per job whatever the
  // data; ml-latest-small's quality is the pipeline e2e's business.
  ...SMALL_RELEASE,
  bucket,
  prefix,
  runId,
  // One ALS point: every point is the same kind of step, a second one proves nothing new and costs
  // a cold spark-submit JVM. Beside it the deep PyTorch family (I-AutoRec through TorchDistributor),
  // tiny: its grid point, its evaluation and (as the only other family) nothing else run as EMR
  // steps like ALS's, and the two points are the grid's two steps at once.
  grid: { rank: [4], regParam: [0.1], maxIter: [4] },
  families: { torch_autorec: { hidden: [16], epochs: [10] } },
  split: { kind: 'random' as const, cvFolds: 2 },
  runner: { kind: 'emr' as const, transient: { logUri: `s3://${bucket}/${prefix}/emr-logs/`, instanceCount: 1 } },
  register: false,
});

const ops = (op: string) => server.calls.filter((c) => c.operation === op);

test('runs every job as an EMR step on a transient cluster that bootstrapped the jobs\' venv and runs two steps at once, and terminates the cluster', async () => {
  const runId = `emr-${randomBytes(3).toString('hex')}`;
  const result = await client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `lensflow-${runId}`, args: [input(runId)] });
  emrResult = result;

  expect(result.grid).toHaveLength(1);
  expect(result.clean.counts.ratings.clean).toBe(SMALL_RELEASE.source.ratings);
  expect(result.test.als.rmse).toBeLessThan(result.test.global_mean.rmse!);
  const described = await client.workflow.getHandle(`lensflow-${runId}`).describe();
  const clusterId = (described.memo as { emrClusterId: string }).emrClusterId;
  expect(clusterId).toMatch(/^j-/);
  // clean, split, 1 ALS grid point, 1 torch_autorec point, train_final, evaluate, analysis, recommend, report.
  const added = ops('AddJobFlowSteps').filter((c) => (c.input as { JobFlowId: string }).JobFlowId === clusterId);
  expect(added).toHaveLength(9);
  const argsOf = (c: (typeof added)[number]) => (c.input as { Steps: Array<{ HadoopJarStep: { Args: string[] } }> }).Steps[0]!.HadoopJarStep.Args.join(' ');
  expect(added.map(argsOf).filter((a) => a.includes('model_point') && a.includes('torch_autorec'))).toHaveLength(1);
  // The PyTorch model trained as a step and was evaluated beside ALS and the baselines (ten epochs
  // do not make it good: its quality is test_models.py's and the bench's business).
  expect(result.test.torch_autorec!.rmse).toBeGreaterThan(0);
  expect(result.test.torch_autorec!.rmse).toBeLessThan(4.5);
  expect((added[0]!.input as { Steps: Array<{ HadoopJarStep: { Jar: string; Args: string[] } }> }).Steps[0]!.HadoopJarStep).toMatchObject({
    Jar: 'command-runner.jar',
    Args: expect.arrayContaining(['spark-submit', '--deploy-mode', 'client']),
  });
  // The bootstrap action fetched from the run's job package built the venv the configuration points
  // Spark's Python at, and the grid's two points (ALS and I-AutoRec) ran as two steps at once.
  const python = '/opt/lensflow/venv/bin/python';
  expect(server.clusterFacts(clusterId)).toMatchObject({
    nodeDirs: ['/opt/lensflow/venv'],
    configurations: [{ Classification: 'spark-defaults', Properties: { 'spark.pyspark.python': python, 'spark.pyspark.driver.python': python } }],
    stepConcurrencyLevel: 2,
    maxRunningSteps: 2,
  });
  const [bootstrap] = server.clusterFacts(clusterId)!.bootstrapActions;
  expect(bootstrap!.ScriptBootstrapAction!.Path).toMatch(new RegExp(`^s3://${bucket}/${prefix}/code/[0-9a-f]{16}/bootstrap/emr-bootstrap-venv\\.sh$`));
  expect(ops('TerminateJobFlows').map((c) => (c.input as { JobFlowIds: string[] }).JobFlowIds[0])).toContain(clusterId);
});

// Cancelled while its first step (clean, the cheapest) runs: the path is the same for any step.
test('cancelling while a step runs cancels the EMR step and terminates the cluster', async () => {
  const runId = `emr-cancel-${randomBytes(3).toString('hex')}`;
  const handle = await client.workflow.start(trainingPipeline, { taskQueue, workflowId: `lensflow-${runId}`, args: [input(runId)] });
  await waitFor(`a step of ${runId} to run its spark-submit`, () => liveProcessesMatching(runId).length > 0 || undefined, {
    timeoutMs: 5 * 60_000,
    intervalMs: 250,
    seen: () => handle.query(progressQuery).catch(String),
  });
  await handle.cancel();
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  const atCanceled = await snapshot(`${prefix}/runs/${runId}/`);

  const clusterId = ((await handle.describe()).memo as { emrClusterId: string }).emrClusterId;
  expect(ops('CancelSteps').some((c) => (c.input as { ClusterId: string }).ClusterId === clusterId)).toBe(true);
  expect(ops('TerminateJobFlows').map((c) => (c.input as { JobFlowIds: string[] }).JobFlowIds[0])).toContain(clusterId);
  const t0 = Date.now();
  while (liveProcessesMatching(runId).length > 0 && Date.now() - t0 < 10_000) await sleep(200);
  expect(liveProcessesMatching(runId)).toEqual([]);
  expect([...server.applications.values()].filter((a) => a.state === 'RUNNING')).toEqual([]);
  // Nothing of the run's is written after it reported Canceled.
  await sleep(3_000);
  expect(await snapshot(`${prefix}/runs/${runId}/`)).toEqual(atCanceled);
});

// 45 s late misses five backed-off log polls (at 1, 3, 7, 15 and 31 s with 1 s steps polling): the
// path of EMR's up-to-5-minute delay; the sixth poll, at 61 s, finds it (100 s late took 121 s).
// The run starts in beforeAll, beside the first test's: it spends that minute waiting.
const LATE_LOG_URI = `s3://${bucket}/${prefix}/emr-logs-late/`;
let lateFailure: Promise<unknown>;
function startLateLogsRun(): Promise<unknown> {
  const runId = `emr-late-${randomBytes(3).toString('hex')}`;
  // A Python the bootstrap did not build: the first step (clean) fails at once, no Spark run needed.
  const transient = {
    ...input(runId).runner.transient,
    logUri: LATE_LOG_URI,
    configurations: [{ classification: 'spark-defaults', properties: { 'spark.pyspark.python': '/opt/elsewhere/bin/python' } }],
  };
  server.logDelayMsByLogUri.set(LATE_LOG_URI, 45_000);
  return client.workflow
    .execute(trainingPipeline, { taskQueue, workflowId: `lensflow-${runId}`, args: [{ ...input(runId), runner: { kind: 'emr' as const, transient } }] })
    .then(() => undefined, (e: unknown) => e);
}

test('a failing step whose logs reach S3 late (45 s, as EMR\'s every-5-minutes upload can be) still has its Python traceback quoted in the workflow failure', async () => {
  const err = await lateFailure;
  expect(err).toBeInstanceOf(WorkflowFailedError);
  // The activity's failure, under the workflow's.
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) messages.push(e.message);
  const message = messages.join('\n');
  expect(message).toMatch(/--- the job's error \(s3:\/\/\S+\/steps\/s-[A-Z0-9]+\/stdout\.gz\) ---\nTraceback \(most recent call last\):/);
  expect(message).toContain("ModuleNotFoundError: No module named 'jsonschema' (EMR test server: /opt/elsewhere/bin/python does not exist on the nodes");
}, 8 * 60_000);

test('the same run on the local runner, its Spark engine SIGKILLed mid-grid behind a throttling S3, completes with the same outputs', async () => {
  expect(emrResult).toBeDefined();
  const killQueue = `e2e-kill-${randomBytes(3).toString('hex')}`;
  const proxy = await startFaultyS3Proxy(settings.s3.endpoint!, 4); // more than the AWS SDK's own 3 tries
  const worker = spawn('node', [join(__dirname, '..', 'dist', 'workers', 'main.js')], {
    env: { ...process.env, LENSFLOW_TASK_QUEUE: killQueue, LENSFLOW_S3_ENDPOINT: proxy.endpoint },
    stdio: 'ignore',
  });
  // A warm engine of its own on `<killQueue>-spark`, in its own process group (Python and its JVM).
  const engineState = mkdtempSync(join(tmpdir(), 'lensflow-engine-'));
  const startEngine = (): ChildProcess =>
    spawn(join(settings.spark.venv!, 'bin', 'python'), ['-m', 'lensflow_spark.worker'], {
      // It serves this one small run: C1 only, as the EMR steps' JVMs.
      env: { ...process.env, LENSFLOW_TASK_QUEUE: killQueue, LENSFLOW_STATE_DIR: engineState, PYTHONPATH: join(__dirname, '..', 'spark'), SPARK_LOCAL_IP: '127.0.0.1', SPARK_SUBMIT_OPTS: shortLivedSubmitOpts() },
      stdio: 'ignore',
      detached: true,
    });
  const killEngine = (p: ChildProcess) => {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  let engine = startEngine();
  try {
    const runId = `kill-${randomBytes(3).toString('hex')}`;
    const workflowId = `lensflow-${runId}`;
    const handle = await client.workflow.start(trainingPipeline, { taskQueue: killQueue, workflowId, args: [{ ...input(runId), runner: { kind: 'local' } }] });
    // Until the ALS point (`grid-000-…`; the family's is `grid-torch_autorec-…`) heartbeats Spark
    // tasks: its Spark jobs run in the engine.
    const gridRunning = async () =>
      ((await handle.describe()).raw.pendingActivities ?? []).some((a) => /^grid-\d/.test(a.activityId ?? '') && a.heartbeatDetails?.payloads?.[0]?.data && JSON.parse(Buffer.from(a.heartbeatDetails.payloads[0].data).toString('utf8')).tasks?.total > 0);
    await waitFor('the ALS grid point of the local run to heartbeat Spark tasks', async () => (await gridRunning()) || undefined, { timeoutMs: 10 * 60_000, intervalMs: 250 });
    // `lensflow progress` shows, beside the workflow's own view, the grid job's Spark progress.
    const cli = spawnSync('node', [join(__dirname, '..', 'dist', 'cli', 'main.js'), 'progress', runId], { encoding: 'utf8' });
    expect(cli.status).toBe(0);
    const shown = JSON.parse(cli.stdout) as { stage: string; spark: Array<{ activityId: string; job: string; tasks: { done: number; total: number } }> };
    expect(shown.stage).toBe('grid');
    expect(shown.spark).toEqual(expect.arrayContaining([expect.objectContaining({ activityId: expect.stringMatching(/^grid-/), job: 'als_point' })]));
    expect(Math.max(...shown.spark.map((j) => j.tasks.total))).toBeGreaterThan(0);
    const finishedBeforeKill = Object.keys(attempts(workflowId));
    expect(finishedBeforeKill).toEqual(expect.arrayContaining(['clean', 'split']));
    killEngine(engine);
    await sleep(1000);
    engine = startEngine();

    const result = await handle.result();
    expect(proxy.faults()).toBe(4);
    const tries = attempts(workflowId);
    // stageDataset (activity id 1, the one without a named id) met the throttling and was retried.
    expect(tries['1']).toBeGreaterThanOrEqual(2);
    // Nothing that had finished ran again; the grid step cut off by the kill was retried.
    for (const id of finishedBeforeKill.filter((i) => i !== '1')) expect(tries[id]).toBe(1);
    expect(Math.max(...Object.entries(tries).filter(([id]) => id.startsWith('grid-')).map(([, n]) => n))).toBeGreaterThanOrEqual(2);

    // The warm engine and an EMR step partition the same seeded work differently, so their
    // floating-point sums may differ in the last digits; counts, points and choices may not.
    const emr = emrResult!;
    expect(result.clean.counts).toEqual(emr.clean.counts);
    expect(metricDrift(result.grid.map((g) => [g.point, g.rmse]), emr.grid.map((g) => [g.point, g.rmse]))).toBeLessThan(1e-9);
    expect(result.best.point).toEqual(emr.best.point);
    expect(metricDrift(result.best, emr.best)).toBeLessThan(1e-9);
    expect(metricDrift(result.test, emr.test)).toBeLessThan(1e-9);
  } finally {
    killEngine(engine);
    worker.kill('SIGTERM');
    await proxy.close();
  }
});
