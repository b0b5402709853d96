/**
 * The pipeline on the EMR runner: a worker whose EMR endpoint is the EMR-API test server, which
 * runs every step's spark-submit arguments on local Spark. The run creates a transient cluster,
 * adds each job as a step, and terminates the cluster at the end — and on cancel.
 *
 * The same input then runs on the local runner while its worker is SIGKILLed mid-grid behind a
 * throttling S3: it must complete with exactly the EMR run's outputs (the jobs are seeded).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { PipelineSummary } from '../src/contracts/summary';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { progressQuery, trainingPipeline } from '../src/workflows';
import { EmrTestServer, liveProcessesMatching } from './emr/emrTestServer';
import { startFaultyS3Proxy } from './helpers/faultyS3Proxy';
import { stackSettings, temporalCli, uniquePrefix } from './helpers/stack';

jest.setTimeout(12 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;
const prefix = uniquePrefix('emr-e2e');
const taskQueue = `e2e-emr-${randomBytes(3).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
});
afterAll(async () => {
  worker.kill('SIGTERM');
  await closeServer();
  await client.connection.close();
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
  dataset: 'ml-latest-small' as const,
  bucket,
  prefix,
  runId,
  grid: { rank: [4, 8], regParam: [0.1], maxIter: [4] },
  split: { kind: 'random' as const, cvFolds: 2 },
  runner: { kind: 'emr' as const, transient: { logUri: `s3://${bucket}/${prefix}/emr-logs/`, instanceCount: 1 } },
  register: false,
});

const ops = (op: string) => server.calls.filter((c) => c.operation === op);

test('runs every job as an EMR step on a transient cluster, and terminates the cluster', async () => {
  const runId = `emr-${randomBytes(3).toString('hex')}`;
  const result = await client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `lensflow-${runId}`, args: [input(runId)] });
  emrResult = result;

  expect(result.grid).toHaveLength(2);
  expect(result.clean.counts.ratings.clean).toBe(100_836);
  expect(result.test.als.rmse).toBeLessThan(result.test.global_mean.rmse!);
  const described = await client.workflow.getHandle(`lensflow-${runId}`).describe();
  const clusterId = (described.memo as { emrClusterId: string }).emrClusterId;
  expect(clusterId).toMatch(/^j-/);
  // clean, split, 2 grid points, train_final, evaluate, analysis, recommend, report.
  const added = ops('AddJobFlowSteps').filter((c) => (c.input as { JobFlowId: string }).JobFlowId === clusterId);
  expect(added).toHaveLength(9);
  expect((added[0]!.input as { Steps: Array<{ HadoopJarStep: { Jar: string; Args: string[] } }> }).Steps[0]!.HadoopJarStep).toMatchObject({
    Jar: 'command-runner.jar',
    Args: expect.arrayContaining(['spark-submit', '--deploy-mode', 'cluster']),
  });
  expect(ops('TerminateJobFlows').map((c) => (c.input as { JobFlowIds: string[] }).JobFlowIds[0])).toContain(clusterId);
});

test('cancelling during the grid search cancels the EMR steps and terminates the cluster', async () => {
  const runId = `emr-cancel-${randomBytes(3).toString('hex')}`;
  const handle = await client.workflow.start(trainingPipeline, { taskQueue, workflowId: `lensflow-${runId}`, args: [input(runId)] });
  for (let i = 0; i < 600; i++) {
    const p = await handle.query(progressQuery).catch(() => undefined);
    if (p?.stage === 'grid' && liveProcessesMatching(runId).length > 0) break;
    await sleep(500);
  }
  expect(liveProcessesMatching(runId).length).toBeGreaterThan(0);
  await handle.cancel();
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);

  const clusterId = ((await handle.describe()).memo as { emrClusterId: string }).emrClusterId;
  expect(ops('CancelSteps').some((c) => (c.input as { ClusterId: string }).ClusterId === clusterId)).toBe(true);
  expect(ops('TerminateJobFlows').map((c) => (c.input as { JobFlowIds: string[] }).JobFlowIds[0])).toContain(clusterId);
  const t0 = Date.now();
  while (liveProcessesMatching(runId).length > 0 && Date.now() - t0 < 10_000) await sleep(200);
  expect(liveProcessesMatching(runId)).toEqual([]);
});

test('the same run on the local runner, its worker SIGKILLed mid-grid behind a throttling S3, completes with the same outputs', async () => {
  expect(emrResult).toBeDefined();
  const killQueue = `e2e-kill-${randomBytes(3).toString('hex')}`;
  const proxy = await startFaultyS3Proxy(settings.s3.endpoint!, 4); // more than the AWS SDK's own 3 tries
  const startWorker = (): ChildProcess =>
    spawn('node', [join(__dirname, '..', 'dist', 'workers', 'main.js')], {
      env: { ...process.env, LENSFLOW_TASK_QUEUE: killQueue, LENSFLOW_S3_ENDPOINT: proxy.endpoint },
      stdio: 'ignore',
    });
  let local = startWorker();
  try {
    const runId = `kill-${randomBytes(3).toString('hex')}`;
    const workflowId = `lensflow-${runId}`;
    const handle = await client.workflow.start(trainingPipeline, { taskQueue: killQueue, workflowId, args: [{ ...input(runId), runner: { kind: 'local' } }] });
    for (let i = 0; i < 1200; i++) {
      const p = await handle.query(progressQuery).catch(() => undefined);
      if (p?.stage === 'grid' && liveProcessesMatching(`lensflow-als_point-${runId}`).length > 0) break;
      await sleep(250);
    }
    const finishedBeforeKill = Object.keys(attempts(workflowId));
    expect(finishedBeforeKill).toEqual(expect.arrayContaining(['clean', 'split']));
    local.kill('SIGKILL');
    await sleep(1000);
    local = startWorker();

    const result = await handle.result();
    expect(proxy.faults()).toBe(4);
    const tries = attempts(workflowId);
    // stageDataset (activity id 1, the one without a named id) met the throttling and was retried.
    expect(tries['1']).toBeGreaterThanOrEqual(2);
    // Nothing that had finished ran again; the grid step cut off by the kill was retried.
    for (const id of finishedBeforeKill.filter((i) => i !== '1')) expect(tries[id]).toBe(1);
    expect(Math.max(...Object.entries(tries).filter(([id]) => id.startsWith('grid-')).map(([, n]) => n))).toBeGreaterThanOrEqual(2);

    const emr = emrResult!;
    expect(result.clean.counts).toEqual(emr.clean.counts);
    expect(result.grid.map((g) => [g.point, g.rmse])).toEqual(emr.grid.map((g) => [g.point, g.rmse]));
    expect(result.best).toEqual(emr.best);
    expect(result.test).toEqual(emr.test);
  } finally {
    local.kill('SIGKILL');
    await proxy.close();
  }
});
