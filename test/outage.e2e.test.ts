/**
 * Outages on the local stack with real Spark: during one run the S3 server (versitygw) is SIGKILLed
 * while a grid point's Spark job runs and restarted 10 s later, then the Temporal dev server is
 * SIGKILLed while a later stage's job runs and restarted 10 s later on its database. The workers
 * live through both (they reconnect), the run completes with the result document and output
 * objects of an unfaulted run of the same input, and what had finished before a fault never ran
 * again: its result objects are untouched and its activities finished on their first attempt.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../src/activities/s3Client';
import { workflowIdFor, type TrainingPipelineInput } from '../src/contracts/pipeline';
import { progressQuery, trainingPipeline } from '../src/workflows';
import { boto3Json, killService, processGone, s3Snapshot, servicePid, stackSettings, temporalCli, uniquePrefix } from './helpers/stack';
import { waitFor } from './helpers/waitFor';

// Two tiny runs (one faulted): a few minutes on a quiet 2-core machine, far longer on a shared one.
jest.setTimeout(60 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;
const s3 = createS3Client(settings.s3);
const OUTAGE_MS = 10_000;
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

const stamp = `${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
const input = (name: string): TrainingPipelineInput & { runId: string; prefix: string } => ({
  dataset: 'ml-latest-small',
  source: { kind: 'local', dir: process.env.LENSFLOW_DATA_DIR ?? `${__dirname}/../../shared/data/movielens` },
  bucket,
  prefix: uniquePrefix(`outage-${name}`),
  runId: `outage-${name}-${stamp}`,
  grid: { rank: [2, 4], regParam: [0.1], maxIter: [3] },
  split: { kind: 'random', testFraction: 0.2, cvFolds: 2, seed: 3 },
  maxConcurrentSteps: 2,
  register: false,
});

let client: Client;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }), namespace: settings.temporal.namespace });
});
afterAll(async () => {
  await client.connection.close();
  s3.destroy();
});

/** The run's result document and object names, with its prefix and run id taken out. */
function outputs(run: { prefix: string; runId: string }) {
  const view = boto3Json<{ document: unknown; keys: string[] }>(
    settings,
    `
run = '${run.prefix}/runs/${run.runId}/'
keys = [o['Key'][len(run):] for p in s3.get_paginator('list_objects_v2').paginate(Bucket='${bucket}', Prefix=run) for o in p.get('Contents', [])]
doc = json.loads(s3.get_object(Bucket='${bucket}', Key=run + 'results/pipeline.json')['Body'].read())
print(json.dumps({'document': doc, 'keys': sorted(keys)}))`,
  );
  // Spark names part files with a fresh UUID per write.
  const neutral = JSON.stringify(view)
    .split(run.prefix).join('<prefix>')
    .split(run.runId).join('<run>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>');
  // Timings differ between any two runs; everything else must not.
  return JSON.parse(neutral, (key, value: unknown) => (['seconds', 'durationSeconds'].includes(key) ? undefined : value)) as typeof view;
}

/** Activity id -> how often it was scheduled and the attempts it finished on, from the run's history. */
function activityRuns(workflowId: string): Record<string, { scheduled: number; attempts: number[] }> {
  const history = JSON.parse(temporalCli(settings, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json'])) as {
    events: Array<{ eventId: string; activityTaskScheduledEventAttributes?: { activityId: string }; activityTaskStartedEventAttributes?: { scheduledEventId: string; attempt: number } }>;
  };
  const ids = new Map<string, string>();
  const out: Record<string, { scheduled: number; attempts: number[] }> = {};
  for (const e of history.events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      ids.set(e.eventId, scheduled.activityId);
      (out[scheduled.activityId] ??= { scheduled: 0, attempts: [] }).scheduled++;
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) out[ids.get(String(started.scheduledEventId))!]!.attempts.push(started.attempt);
  }
  return out;
}

/** Activity ids of the results under `results` (clean.json, split.json, grid/<id>.json are named after theirs). */
const finishedActivities = (snapshot: Record<string, string>, results: string) =>
  Object.keys(snapshot)
    .map((k) => /^(?:grid\/)?(clean|split|grid-.+)\.json$/.exec(k.slice(results.length))?.[1])
    .filter((id): id is string => Boolean(id));

/** Resolves once one of the run's activities whose id starts with `idPrefix` runs (Spark tasks heartbeating). */
function activityRunning(workflowId: string, idPrefix: string, what: string) {
  return waitFor(
    what,
    async () => {
      const pending = (await client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
      return pending.find((a) => a.activityId?.startsWith(idPrefix) && a.state === STARTED && a.heartbeatDetails?.payloads?.length)?.activityId ?? undefined;
    },
    { timeoutMs: 25 * 60_000, intervalMs: 250, seen: async () => client.workflow.getHandle(workflowId).query(progressQuery) },
  );
}

/** Kills a service, keeps it down for the outage, restarts it and waits until it answers again. */
async function outage(name: 'temporal' | 'versitygw', ready: () => Promise<boolean>) {
  const pid = servicePid(settings, name);
  const service = killService(settings, name);
  await waitFor(`${name} (pid ${pid}) to die after SIGKILL`, () => processGone(pid) || undefined, { timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  service.restart();
  await waitFor(`${name} to answer again after its restart (see .lensflow/logs/${name}.log)`, async () => (await ready().catch(() => false)) || undefined, { timeoutMs: 120_000, intervalMs: 500 });
}

const s3Ready = async () => Boolean(await s3.send(new ListBucketsCommand({})));
const temporalReady = async () => (temporalCli(settings, ['operator', 'cluster', 'health']), true);

test('a run survives an S3 outage mid-grid and a Temporal outage mid-stage, with the outputs of an unfaulted run', async () => {
  const workers = { worker: servicePid(settings, 'worker'), 'spark-worker': servicePid(settings, 'spark-worker') };
  const reference = input('reference');
  await client.workflow.execute(trainingPipeline, { taskQueue: settings.temporal.taskQueue, workflowId: workflowIdFor(reference.runId), args: [reference] });

  const faulted = input('faulted');
  const workflowId = workflowIdFor(faulted.runId);
  const handle = await client.workflow.start(trainingPipeline, { taskQueue: settings.temporal.taskQueue, workflowId, args: [faulted] });
  const results = `${faulted.prefix}/runs/${faulted.runId}/results/`;

  await activityRunning(workflowId, 'grid-', 'a grid point of the faulted run to run its Spark job');
  const beforeS3Outage = await s3Snapshot(s3, bucket, results);
  expect(Object.keys(beforeS3Outage).map((k) => k.slice(results.length))).toEqual(expect.arrayContaining(['clean.json', 'split.json']));
  await outage('versitygw', s3Ready);

  // A Spark job of the stage after the grid: train-final, evaluate, analysis.
  await activityRunning(workflowId, 'evaluate', 'the faulted run\'s evaluate job to run after the grid');
  const beforeTemporalOutage = await s3Snapshot(s3, bucket, results);
  await outage('temporal', temporalReady);

  await handle.result();
  expect(outputs(faulted)).toEqual(outputs(reference));

  // What had finished before each outage was not written again, and never ran a second attempt.
  const after = await s3Snapshot(s3, bucket, results);
  expect(after).toMatchObject(beforeS3Outage);
  expect(after).toMatchObject(beforeTemporalOutage);
  // Each stage was scheduled once; those done before the S3 outage finished on their first attempt.
  const runs = activityRuns(workflowId);
  expect(Object.entries(runs).filter(([, r]) => r.scheduled !== 1)).toEqual([]);
  const beforeS3 = finishedActivities(beforeS3Outage, results);
  expect(beforeS3).toEqual(expect.arrayContaining(['clean', 'split']));
  expect(beforeS3.map((id) => [id, runs[id]?.attempts])).toEqual(beforeS3.map((id) => [id, [1]]));
  expect(finishedActivities(beforeTemporalOutage, results)).toEqual(expect.arrayContaining([expect.stringMatching(/^grid-/)]));
  // The same worker processes served the whole run: they reconnected instead of being restarted.
  expect({ worker: servicePid(settings, 'worker'), 'spark-worker': servicePid(settings, 'spark-worker') }).toEqual(workers);
});
