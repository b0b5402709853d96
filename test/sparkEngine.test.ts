/**
 * The warm local Spark engine (`lensflow_spark.worker`, started by `make up`): jobs run as
 * activities in one long-lived SparkSession. Checked on the real stack: a failing job's error, Spark
 * progress in heartbeats, and cancelling a running job while the session serves the next one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { sparkTaskQueueOf, type JobRequest, type JobRun } from '../src/contracts/jobInputs';
import type { JobName } from '../src/contracts/jobResults';
import { stackSettings, temporalCli, uniquePrefix } from './helpers/stack';

jest.setTimeout(10 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;
const prefix = uniquePrefix('engine');
const engineQueue = sparkTaskQueueOf(settings.temporal.taskQueue);
const taskQueue = `test-engine-${randomBytes(3).toString('hex')}`;
const localData = settings.data.localDir;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let client: Client;
let worker: Worker;
let running: Promise<void>;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }) });
  const connection = await NativeConnection.connect({ address: settings.temporal.address });
  worker = await Worker.create({ connection, taskQueue, workflowsPath: require.resolve('./helpers/sparkJobWorkflow') });
  running = worker.run();
});
afterAll(async () => {
  worker.shutdown();
  await running;
  await client.connection.close();
});

const enginePid = () => Number(readFileSync(join(settings.stateDir, 'run', 'spark-worker.pid'), 'utf8'));
const request = (runId: string, resultName: string, input: Record<string, unknown>) => ({ runId, bucket, prefix, resultName, input }) as JobRequest;
const start = (job: JobName, req: JobRequest) =>
  client.workflow.start('sparkJob', { taskQueue, workflowId: `engine-${req.runId}-${req.resultName}`, args: [job, req, engineQueue] });
const run = async <R>(job: JobName, req: JobRequest) => (await (await start(job, req)).result()) as JobRun<R>;

test('a failing job fails once, non-retryably, with the job\'s own Python error text', async () => {
  const runId = `fail-${randomBytes(3).toString('hex')}`;
  const handle = await start('clean', request(runId, 'clean', { dataset: 'ml-latest-small', raw: `s3://${bucket}/${prefix}/nothing-here/`, output: `s3://${bucket}/${prefix}/out/` }));
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const activity = (err as WorkflowFailedError).cause as ActivityFailure;
  const failure = activity.cause as ApplicationFailure;
  expect(failure.type).toBe('SparkJobFailed');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toContain('PATH_NOT_FOUND');
  expect(failure.message).toContain('Traceback');
  const history = JSON.parse(temporalCli(settings, ['workflow', 'show', '--workflow-id', handle.workflowId, '--output', 'json'])) as { events: Array<{ activityTaskStartedEventAttributes?: { attempt: number } }> };
  expect(history.events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]);
});

test('cancelling a running job stops its Spark jobs within 10 s, and the same warm session serves the next job', async () => {
  if (!localData) throw new Error('needs LENSFLOW_DATA_DIR (make up with LENSFLOW_DATA_DIR set)');
  const pid = enginePid();
  const runId = `cancel-${randomBytes(3).toString('hex')}`;
  const runUri = `s3://${bucket}/${prefix}/runs/${runId}`;
  const clean = await run<{ outputs: { ratings: string } }>('clean', request(runId, 'clean', { dataset: 'ml-latest-small', raw: `file://${localData}/ml-latest-small/`, output: `${runUri}/processed/` }));
  const split = await run<{ cv: unknown[] }>('split', request(runId, 'split', { ratings: clean.result.outputs.ratings, raw: `file://${localData}/ml-latest-small/`, protocol: { kind: 'kfold', k: 2, seed: 1 }, output: `${runUri}/folds/` }));
  const point = (maxIter: number) => ({ rank: 30, regParam: 0.1, maxIter, alpha: 1, implicitPrefs: false });
  const model = { seed: 1, checkpoint: `${runUri}/checkpoints/x/` };

  // Long enough to be running when cancelled: 2 folds of 60 iterations at rank 30.
  const long = await start('als_point', request(runId, 'grid/long', { folds: split.result.cv, point: point(60), ...model }));
  let progress: { tasks?: { done: number; total: number } } | undefined;
  for (let i = 0; i < 240 && !(progress?.tasks && progress.tasks.total > 0); i++) {
    await sleep(500);
    const pending = (await long.describe()).raw.pendingActivities ?? [];
    const details = pending[0]?.heartbeatDetails?.payloads?.[0]?.data;
    progress = details ? JSON.parse(Buffer.from(details).toString('utf8')) : undefined;
  }
  // Heartbeats carry the activity's Spark progress.
  expect(progress).toMatchObject({ job: 'als_point', stages: { total: expect.any(Number) }, tasks: { total: expect.any(Number) } });

  const t0 = Date.now();
  await long.cancel();
  const err = await long.result().then(() => undefined, (e: unknown) => e);
  const seconds = (Date.now() - t0) / 1000;
  // The workflow waits for the activity to end cancelled, which it does once its Spark jobs returned.
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(seconds).toBeLessThan(10);

  const next = await run<{ mean: { rmse: number } }>('als_point', request(runId, 'grid/next', { folds: split.result.cv, point: point(2), ...model }));
  expect(next.reused).toBe(false);
  expect(next.result.mean.rmse).toBeGreaterThan(0);
  expect(enginePid()).toBe(pid);
  // Asked again, the job finds its result and does not run again.
  const again = await run('als_point', request(runId, 'grid/next', { folds: split.result.cv, point: point(2), ...model }));
  expect(again).toMatchObject({ reused: true, result: next.result });
});
