/**
 * The warm local Spark engine (`lensflow_spark.worker`, started by `make up`): jobs run as
 * activities in one long-lived SparkSession. Checked on the real stack: a failing job's error, Spark
 * progress in heartbeats, cancelling a running job while the session serves the next one, and a
 * SIGKILLed engine restarted mid-job.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { sparkTaskQueueOf, type JobRequest, type JobRun } from '../src/contracts/jobInputs';
import type { JobName } from '../src/contracts/jobResults';
import { stackSettings, temporalCli, uniquePrefix } from './helpers/stack';
import { waitFor } from './helpers/waitFor';

jest.setTimeout(10 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;
const prefix = uniquePrefix('engine');
const engineQueue = sparkTaskQueueOf(settings.temporal.taskQueue);
const taskQueue = `test-engine-${randomBytes(3).toString('hex')}`;
const localData = settings.data.localDir;

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
  expect(failure.message).toMatch(/MissingFile: s3a?:\/\/\S*nothing-here\/ratings\.csv: there is no such file/);
  expect(failure.message).toContain('Traceback');
  const history = JSON.parse(temporalCli(settings, ['workflow', 'show', '--workflow-id', handle.workflowId, '--output', 'json'])) as { events: Array<{ activityTaskStartedEventAttributes?: { attempt: number } }> };
  expect(history.events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]);
});

let shared: { runId: string; folds: unknown[] } | undefined;
const point = (rank: number, maxIter: number) => ({ rank, regParam: 0.1, maxIter, alpha: 1, implicitPrefs: false });

test('cancelling a running job stops its Spark jobs within 10 s, and the same warm session serves the next job', async () => {
  if (!localData) throw new Error('needs LENSFLOW_DATA_DIR (make up with LENSFLOW_DATA_DIR set)');
  const pid = enginePid();
  const runId = `cancel-${randomBytes(3).toString('hex')}`;
  const runUri = `s3://${bucket}/${prefix}/runs/${runId}`;
  const clean = await run<{ outputs: { ratings: string } }>('clean', request(runId, 'clean', { dataset: 'ml-latest-small', raw: `file://${localData}/ml-latest-small/`, output: `${runUri}/processed/` }));
  const split = await run<{ cv: unknown[] }>('split', request(runId, 'split', { ratings: clean.result.outputs.ratings, raw: `file://${localData}/ml-latest-small/`, protocol: { kind: 'kfold', k: 2, seed: 1 }, output: `${runUri}/folds/` }));
  shared = { runId, folds: split.result.cv };
  const model = { seed: 1, checkpoint: `${runUri}/checkpoints/x/` };

  // Long enough to be running when cancelled: 2 folds of 60 iterations at rank 30.
  const long = await start('als_point', request(runId, 'grid/long', { folds: split.result.cv, point: point(30, 60), ...model }));
  const progress = await waitFor(
    'the long als_point job to heartbeat Spark tasks',
    async () => {
      const details = ((await long.describe()).raw.pendingActivities ?? [])[0]?.heartbeatDetails?.payloads?.[0]?.data;
      const beat = details ? (JSON.parse(Buffer.from(details).toString('utf8')) as { tasks?: { done: number; total: number } }) : undefined;
      return beat?.tasks && beat.tasks.total > 0 ? beat : undefined;
    },
    { timeoutMs: 5 * 60_000, intervalMs: 500 },
  );
  // Heartbeats carry the activity's Spark progress.
  expect(progress).toMatchObject({ job: 'als_point', stages: { total: expect.any(Number) }, tasks: { total: expect.any(Number) } });

  const t0 = Date.now();
  await long.cancel();
  const err = await long.result().then(() => undefined, (e: unknown) => e);
  const seconds = (Date.now() - t0) / 1000;
  // The workflow waits for the activity to end cancelled, which it does once its Spark jobs returned.
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(seconds).toBeLessThan(10);

  const next = await run<{ mean: { rmse: number } }>('als_point', request(runId, 'grid/next', { folds: split.result.cv, point: point(30, 2), ...model }));
  expect(next.reused).toBe(false);
  expect(next.result.mean.rmse).toBeGreaterThan(0);
  expect(enginePid()).toBe(pid);
  // Asked again, the job finds its result and does not run again.
  const again = await run('als_point', request(runId, 'grid/next', { folds: split.result.cv, point: point(30, 2), ...model }));
  expect(again).toMatchObject({ reused: true, result: next.result });
});

test('SIGKILL the engine mid-job and restart it: the run completes, finished jobs do not run again, the outputs equal an unfaulted run\'s', async () => {
  expect(shared).toBeDefined();
  const { runId, folds } = shared!;
  const model = { seed: 3, checkpoint: `s3://${bucket}/${prefix}/runs/${runId}/checkpoints/k/` };
  const quick = request(runId, 'grid/kill-quick', { folds, point: point(4, 2), ...model });
  const long = request(runId, 'grid/kill-long', { folds, point: point(10, 25), ...model });
  const handle = await client.workflow.start('sparkJobs', { taskQueue, workflowId: `engine-kill-${runId}`, args: [[['als_point', quick], ['als_point', long]], engineQueue] });
  // Until the long job heartbeats Spark tasks: it runs in the engine.
  await waitFor(
    'grid-kill-long to heartbeat Spark tasks',
    async () => {
      const data = ((await handle.describe()).raw.pendingActivities ?? []).find((a) => a.activityId === 'grid-kill-long')?.heartbeatDetails?.payloads?.[0]?.data;
      return (data && JSON.parse(Buffer.from(data).toString('utf8')).tasks?.total > 0) || undefined;
    },
    { timeoutMs: 5 * 60_000, intervalMs: 500 },
  );
  const pid = enginePid();
  process.kill(-pid, 'SIGKILL'); // the engine's process group: Python and its JVM
  const restarted = spawnSync('bash', [join(__dirname, '..', 'setup', 'stack.sh'), 'spark-worker'], { encoding: 'utf8' });
  expect(restarted.status).toBe(0);
  expect(enginePid()).not.toBe(pid);

  const [first, second] = (await handle.result()) as Array<JobRun<{ mean: { rmse: number } }>>;
  const history = JSON.parse(temporalCli(settings, ['workflow', 'show', '--workflow-id', handle.workflowId, '--output', 'json'])) as {
    events: Array<{ eventId: string; activityTaskScheduledEventAttributes?: { activityId: string }; activityTaskStartedEventAttributes?: { scheduledEventId: string; attempt: number } }>;
  };
  const ids = new Map(history.events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [e.eventId, e.activityTaskScheduledEventAttributes!.activityId]));
  const attempts = Object.fromEntries(history.events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => [ids.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId)), e.activityTaskStartedEventAttributes!.attempt]));
  // The finished job was not run again; the one cut off by the kill ran again on the new engine.
  expect(attempts).toEqual({ 'grid-kill-quick': 1, 'grid-kill-long': 2 });
  expect(first!.reused).toBe(false);

  // The same input, unfaulted, gives the same result (the jobs are seeded).
  const unfaulted = await run<{ mean: { rmse: number } }>('als_point', request(runId, 'grid/kill-reference', { folds, point: point(10, 25), ...model }));
  expect(second!.result).toEqual(unfaulted.result);
});
