/**
 * No secret anywhere: after a succeeding and a failing pipeline on the local stack (tiny grid, tiny
 * data), neither the S3 access key nor the secret key appears in any workflow history, any worker or
 * Spark step log under `.lensflow/logs`, any object the runs wrote to S3, or any failure message.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { TemporalFailure } from '@temporalio/common';
import { workflowIdFor } from '../src/contracts/pipeline';
import { trainingPipeline } from '../src/workflows';
import { stackSettings, uniquePrefix } from './helpers/stack';

// Two tiny pipeline runs: minutes on an idle 2-core machine, far longer on a shared one.
jest.setTimeout(45 * 60_000);

const settings = stackSettings();
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
for page in s3.get_paginator('list_objects_v2').paginate(Bucket='${settings.s3.bucket}', Prefix='${prefix}/'):
    for o in page.get('Contents', []):
        body = s3.get_object(Bucket='${settings.s3.bucket}', Key=o['Key'])['Body'].read()
        objects.append(o['Key'])
        leaks += [f"{o['Key']}: {n}" for n, v in secrets.items() if v in body]
print(json.dumps({'objects': objects, 'leaks': leaks}))`;
  const res = spawnSync(join(settings.spark.venv!, 'bin', 'python'), ['-c', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.status !== 0) throw new Error(`S3 scan failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as { objects: string[]; leaks: string[] };
}

let client: Client;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }), namespace: settings.temporal.namespace });
});
afterAll(() => client.connection.close());

it('the search finds a planted secret (so finding none below means something)', () => {
  const { AWS_SECRET_ACCESS_KEY: secret } = secrets();
  expect(leaks(`config: ${secret}\n`)).toEqual(['AWS_SECRET_ACCESS_KEY']);
  expect(texts({ payloads: [{ data: Buffer.from(`{"k":"${secret}"}`) }] }).some((t) => leaks(t).length > 0)).toBe(true);
});

it('no workflow history, log, S3 object or failure message holds the S3 keys after a good and a failing run', async () => {
  const prefix = uniquePrefix('no-secret');
  const stamp = Date.now().toString(36);
  const base = {
    dataset: 'ml-latest-small' as const,
    source: { kind: 'local' as const, dir: resolve(process.env.LENSFLOW_DATA_DIR ?? join(__dirname, '..', '..', 'shared', 'data', 'movielens')) },
    bucket: settings.s3.bucket,
    prefix,
    grid: { rank: [4], regParam: [0.1], maxIter: [2] },
    maxConcurrentSteps: 1,
  };
  const good = `no-secret-ok-${stamp}`;
  const bad = `no-secret-fail-${stamp}`;
  const result = await client.workflow.execute(trainingPipeline, {
    taskQueue: settings.temporal.taskQueue,
    workflowId: workflowIdFor(good),
    args: [{ ...base, runId: good, split: { kind: 'random', testFraction: 0.2, cvFolds: 2, seed: 1 } }],
  });
  expect(result.best.point.rank).toBe(4);
  // ml-100k's official folds do not exist in ml-latest-small: the split job fails with its traceback.
  const failure = await client.workflow
    .execute(trainingPipeline, { taskQueue: settings.temporal.taskQueue, workflowId: workflowIdFor(bad), args: [{ ...base, runId: bad, split: { kind: 'official' } }] })
    .then(() => undefined, (e: unknown) => e);
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

  const s3 = s3Leaks(prefix);
  expect(s3.objects).toEqual(expect.arrayContaining([`${prefix}/runs/${good}/results/clean.json`, `${prefix}/runs/${good}/input.json`]));
  found.push(...s3.leaks);

  expect(found).toEqual([]);
});
