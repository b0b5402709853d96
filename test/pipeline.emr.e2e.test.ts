/**
 * The pipeline on the EMR runner: a worker whose EMR endpoint is the EMR-API test server, which
 * runs every step's spark-submit arguments on local Spark. The run creates a transient cluster,
 * adds each job as a step, and terminates the cluster at the end — and on cancel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { progressQuery, trainingPipeline } from '../src/workflows';
import { EmrTestServer, liveProcessesMatching } from './emr/emrTestServer';
import { stackSettings, uniquePrefix } from './helpers/stack';

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
