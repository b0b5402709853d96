/**
 * Input the pipeline must refuse, run through the real worker of the local stack, before any Spark
 * step: a release with a file-level defect fails at staging, once, with the file and the fix, and
 * nothing appears under the prefix; a run id whose outputs came from another input is refused.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { workflowIdFor } from '../src/contracts/pipeline';
import { makeClaimRunId } from '../src/activities/runClaim';
import { createS3Client } from '../src/activities/s3Client';
import { trainingPipeline } from '../src/workflows';
import { boto3Json, stackSettings, uniquePrefix } from './helpers/stack';

const settings = stackSettings();
const shared = resolve(process.env.LENSFLOW_DATA_DIR ?? resolve(__dirname, '..', '..', 'shared', 'data', 'movielens'));
let client: Client;

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }), namespace: settings.temporal.namespace });
});
afterAll(() => client.connection.close());

/** The innermost application failure of a workflow failure. */
function applicationCause(err: unknown): ApplicationFailure | undefined {
  let e: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  while (e instanceof TemporalFailure) {
    if (e instanceof ApplicationFailure) return e;
    e = e.cause;
  }
  return undefined;
}

it('a header-only ratings.csv fails the run at staging, once, naming the file, with nothing under runs/<runId>/', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lensflow-bad-input-'));
  cpSync(join(shared, 'ml-latest-small'), join(dir, 'ml-latest-small'), { recursive: true });
  writeFileSync(join(dir, 'ml-latest-small', 'ratings.csv'), 'userId,movieId,rating,timestamp\r\n');
  const prefix = uniquePrefix('bad-input');
  const runId = `bad-input-${Date.now().toString(36)}`;

  const handle = await client.workflow.start(trainingPipeline, {
    taskQueue: settings.temporal.taskQueue,
    workflowId: workflowIdFor(runId),
    args: [{ dataset: 'ml-latest-small', source: { kind: 'local', dir }, bucket: settings.s3.bucket, prefix, runId }],
  });
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = applicationCause(err);
  expect(cause?.type).toBe('NoDataRows');
  expect(cause?.nonRetryable).toBe(true);
  expect(cause?.message).toContain(`ml-latest-small/ratings.csv (local folder ${join(dir, 'ml-latest-small')}): the file holds its header and no data row. Fix: `);

  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
  expect(scheduled).toEqual(['stageDataset']);
  const attempts = events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : []));
  expect(attempts).toEqual([1]);

  const keys = boto3Json<string[]>(settings, `print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='${settings.s3.bucket}', Prefix='${prefix}/').get('Contents', [])]))`);
  expect(keys).toEqual([]);
});

it('a run id that already has outputs from another input is refused before any Spark step', async () => {
  const prefix = uniquePrefix('run-id-reuse');
  const runId = `reused-${Date.now().toString(36)}`;
  // The earlier run's claim, as it left it: another data version and another grid.
  const earlier = { dataset: 'ml-100k', dataVersion: '0'.repeat(64), grid: { rank: [99] } };
  await makeClaimRunId(createS3Client(settings.s3))({ bucket: settings.s3.bucket, prefix, runId, rerun: false, input: earlier, execution: 'earlier' });

  const handle = await client.workflow.start(trainingPipeline, {
    taskQueue: settings.temporal.taskQueue,
    workflowId: workflowIdFor(runId),
    args: [{ dataset: 'ml-100k', source: { kind: 'local', dir: shared }, bucket: settings.s3.bucket, prefix, runId }],
  });
  const cause = applicationCause(await handle.result().then(() => undefined, (e: unknown) => e));
  expect(cause?.type).toBe('RunIdConflict');
  expect(cause?.nonRetryable).toBe(true);
  expect(cause?.message).toContain(`run id ${runId} already has outputs from a different input (differs in: dataVersion, grid, ranking, recommendations, seed, split;`);

  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
  expect(scheduled).toEqual(['stageDataset', 'claimRunId']);
  const runKeys = boto3Json<string[]>(settings, `print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='${settings.s3.bucket}', Prefix='${prefix}/runs/').get('Contents', [])]))`);
  expect(runKeys).toEqual([`${prefix}/runs/${runId}/input.json`]);
  const claim = boto3Json<{ execution: string }>(settings, `print(s3.get_object(Bucket='${settings.s3.bucket}', Key='${prefix}/runs/${runId}/input.json')['Body'].read().decode())`);
  expect(claim.execution).toBe('earlier');
});
