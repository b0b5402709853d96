/**
 * Outages on the local stack with real Spark: during one run the S3 server (versitygw) is SIGKILLed
 * while a grid point's Spark job runs and restarted 10 s later, then the Temporal dev server is
 * SIGKILLed while a later stage's job runs and restarted 10 s later on its database. The workers
 * live through both (they reconnect), the run completes with the result document and output
 * objects of an unfaulted run of the same input, and what had finished before a fault never ran
 * again: its result objects are untouched and its activities finished on their first attempt.
 *
 * No secret anywhere: after these runs (the unfaulted one is the succeeding run) and a failing one,
 * neither the S3 access key nor the secret key appears in any workflow history, any worker or Spark
 * log under `.lensflow/logs`, any object the runs wrote to S3, or any failure message. One file, so
 * that the search reuses the outage test's runs instead of running its own.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { TemporalFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../src/activities/s3Client';
import { workflowIdFor, type TrainingPipelineInput } from '../src/contracts/pipeline';
import { progressQuery, trainingPipeline } from '../src/workflows';
import { SMALL_RELEASE } from './helpers/smallRelease';
import { boto3Json, killService, processGone, s3Snapshot, servicePid, stackSettings, temporalCli, uniquePrefix } from './helpers/stack';
import { waitFor } from './helpers/waitFor';

// Three tiny runs (one faulted, one failing at its split): a few minutes on a quiet 2-core machine,
// far longer on a shared one.
jest.setTimeout(60 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;
const s3 = createS3Client(settings.s3);
// Long enough for clients to meet the outage (requests fail and are retried); no longer.
const OUTAGE_MS = 5_000;
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

const stamp = `${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
const input = (name: string): TrainingPipelineInput & { runId: string; prefix: string } => ({
  // The outages and their recovery are what is tested, and a job costs about the same whatever the data.
  ...SMALL_RELEASE,
  bucket,
  prefix: uniquePrefix(`outage-${name}`),
  runId: `outage-${name}-${stamp}`,
  grid: { rank: [2, 4], regParam: [0.1], maxIter: [3] },
  split: { kind: 'random', testFraction: 0.2, cvFolds: 2, seed: 3 },
  maxConcurrentSteps: 2,
  register: false,
});

let client: Client;
/** The unfaulted reference run and a run failing at its split, side by side before any fault. */
let reference: ReturnType<typeof input>;
let referenceRun: Promise<unknown>;
let failingRun: Promise<unknown>;
let failingPrefix: string;
/** The faulted run's prefix, once the outage test has started it (the search scans it too). */
let faultedPrefix = '';
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }), namespace: settings.temporal.namespace });
  reference = input('reference');
  referenceRun = client.workflow.execute(trainingPipeline, { taskQueue: settings.temporal.taskQueue, workflowId: workflowIdFor(reference.runId), args: [reference] });
  // Only ml-100k has official folds: the split job fails with its traceback.
  const failing = { ...input('failing'), split: { kind: 'official' as const } };
  failingPrefix = failing.prefix;
  failingRun = client.workflow
    .execute(trainingPipeline, { taskQueue: settings.temporal.taskQueue, workflowId: workflowIdFor(failing.runId), args: [failing] })
    .then(() => undefined, (e: unknown) => e);
  // Neither rejects unhandled while the first test runs; each test awaits what it needs.
  referenceRun.catch(() => undefined);
  await failingRun;
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
  await referenceRun;

  const faulted = input('faulted');
  faultedPrefix = faulted.prefix;
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

// --- No secret anywhere -------------------------------------------------------------------------

const LOGS = resolve(__dirname, '..', '.lensflow', 'logs');
const secrets = (): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    const value = process.env[name];
    if (!value || value.length < 8) throw new Error(`${name} is unset or too short to search for: source .lensflow/local.env`);
    out[name] = value;
  }
  return out;
};

/** Every string in a value, with byte arrays (history payloads) decoded as UTF-8. */
function texts(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const v of value) texts(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) texts(v, out);
  return out;
}

/** Names of the secrets found in `text`. */
function leaks(text: string | Buffer): string[] {
  return Object.entries(secrets()).flatMap(([name, value]) => (text.includes(value) ? [name] : []));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Every object under the prefix, searched by boto3 (the secrets reach Python through the environment). */
function s3Leaks(prefix: string): { objects: string[]; leaks: string[] } {
  const script = `
import boto3, json, os
s3 = boto3.client('s3', endpoint_url=os.environ['LENSFLOW_S3_ENDPOINT'])
secrets = {n: os.environ[n].encode() for n in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY')}
objects, leaks = [], []
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='${bucket}', Prefix='${prefix}/'):
    for o in page.get('Contents', []):
        body = s3.get_object(Bucket='${bucket}', Key=o['Key'])['Body'].read()
        objects.append(o['Key'])
        leaks += [f"{o['Key']}: {n}" for n, v in secrets.items() if v in body]
print(json.dumps({'objects': objects, 'leaks': leaks}))`;
  const res = spawnSync(join(settings.spark.venv!, 'bin', 'python'), ['-c', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.status !== 0) throw new Error(`S3 scan failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as { objects: string[]; leaks: string[] };
}

it('the search finds a planted secret (so finding none below means something)', () => {
  const { AWS_SECRET_ACCESS_KEY: secret } = secrets();
  expect(leaks(`config: ${secret}\n`)).toEqual(['AWS_SECRET_ACCESS_KEY']);
  expect(texts({ payloads: [{ data: Buffer.from(`{"k":"${secret}"}`) }] }).some((t) => leaks(t).length > 0)).toBe(true);
});

it('no workflow history, log, S3 object or failure message holds the S3 keys after a good, a faulted and a failing run', async () => {
  await referenceRun;
  const failure = await failingRun;
  expect(failure).toBeInstanceOf(WorkflowFailedError);

  const found: string[] = [];
  const messages: string[] = [];
  for (let e: unknown = failure; e instanceof Error; e = e instanceof TemporalFailure || e instanceof WorkflowFailedError ? e.cause : undefined) {
    messages.push(e.message, e.stack ?? '');
  }
  expect(messages.join('\n')).toContain('split');
  found.push(...leaks(messages.join('\n')).map((n) => `failure message: ${n}`));

  let histories = 0;
  for await (const wf of client.workflow.list()) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    histories++;
    for (const t of texts(history)) found.push(...leaks(t).map((n) => `history of ${wf.workflowId}: ${n}`));
  }
  expect(histories).toBeGreaterThanOrEqual(2);

  const logs = filesUnder(LOGS);
  // The warm Spark engine's log holds every local job's output (there are no per-step logs locally).
  expect(logs.some((f) => f.endsWith('spark-worker.log'))).toBe(true);
  for (const file of logs) found.push(...leaks(readFileSync(file)).map((n) => `${file}: ${n}`));

  const good = `${reference.prefix}/runs/${reference.runId}`;
  for (const prefix of [reference.prefix, faultedPrefix, failingPrefix].filter(Boolean)) {
    const s3 = s3Leaks(prefix);
    if (prefix === reference.prefix) expect(s3.objects).toEqual(expect.arrayContaining([`${good}/results/clean.json`, `${good}/input.json`]));
    found.push(...s3.leaks);
  }

  expect(found).toEqual([]);
});
