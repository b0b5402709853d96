/**
 * The `trainingPipeline` workflow on the real Temporal dev server, with activities replaced by
 * recording fakes: input validation, stage wiring and failure propagation.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Activities } from '../src/activities';
import type { CleanResult } from '../src/contracts/jobResults';
import type { TrainingPipelineInput } from '../src/contracts/pipeline';
import type { RunSparkStepInput } from '../src/contracts/sparkStep';
import type { StageDatasetResult } from '../src/contracts/stage';
import { loadSettings } from '../src/settings';
import { trainingPipeline } from '../src/workflows';

const settings = loadSettings();
const taskQueue = `test-pipeline-${randomBytes(4).toString('hex')}`;
let nativeConnection: NativeConnection;
let client: Client;

beforeAll(async () => {
  nativeConnection = await NativeConnection.connect({ address: settings.temporal.address });
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }) });
});
afterAll(async () => {
  await nativeConnection.close();
  await client.connection.close();
});

const staged: StageDatasetResult = {
  dataset: 'ml-latest-small',
  rawUri: 's3://lensflow/wf/raw/ml-latest-small/',
  origin: 'fake',
  files: [],
};
const cleaned: CleanResult = {
  job: 'clean',
  dataset: 'ml-latest-small',
  outputs: { ratings: 's3://lensflow/wf/runs/run-1/processed/ratings', movies: 's3://lensflow/wf/runs/run-1/processed/movies' },
  counts: {
    ratings: { raw: 10, clean: 9, quarantined: { missing_value: 1 } },
    movies: { raw: 3, clean: 3, quarantined: {} },
  },
};

async function runWith(activities: Partial<Activities>, input: TrainingPipelineInput) {
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../src/workflows'),
    activities,
  });
  const workflowId = `test-${input.runId}-${randomBytes(3).toString('hex')}`;
  return worker.runUntil(client.workflow.execute(trainingPipeline, { taskQueue, workflowId, args: [input] }));
}

const input = (over: Partial<TrainingPipelineInput> = {}): TrainingPipelineInput => ({
  dataset: 'ml-latest-small',
  bucket: 'lensflow',
  prefix: 'wf',
  runId: 'run-1',
  ...over,
});

test('stages, then cleans the staged folder into the run folder, and reports both', async () => {
  const sparkCalls: RunSparkStepInput[] = [];
  const result = await runWith(
    {
      stageDataset: async () => staged,
      runSparkStep: async (i: RunSparkStepInput) => {
        sparkCalls.push(i);
        return { step: { name: 'x', actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: ['spark-submit'] } }, result: cleaned, reused: false, durationSeconds: 1 };
      },
    },
    input(),
  );
  expect(sparkCalls).toEqual([
    {
      runId: 'run-1',
      job: 'clean',
      bucket: 'lensflow',
      prefix: 'wf',
      jobArgs: ['--dataset', 'ml-latest-small', '--raw', staged.rawUri, '--output', 's3://lensflow/wf/runs/run-1/processed/', '--result', 's3://lensflow/wf/runs/run-1/results/clean.json'],
      resultUri: 's3://lensflow/wf/runs/run-1/results/clean.json',
    },
  ]);
  expect(result.clean).toEqual(cleaned);
  expect(result.runUri).toBe('s3://lensflow/wf/runs/run-1/');
  expect(result.stages.map((s) => s.stage)).toEqual(['stage', 'clean']);
});

test('rejects invalid input before any activity runs', async () => {
  let called = false;
  const run = runWith({ stageDataset: async () => ((called = true), staged) }, input({ bucket: 'Not_A_Bucket' }));
  const err = await run.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('InvalidInput');
  expect(cause.message).toContain('not a valid S3 bucket name');
  expect(called).toBe(false);
});

test('a permanent Spark failure fails the run once, with the job error text, without retries', async () => {
  let attempts = 0;
  const run = runWith(
    {
      stageDataset: async () => staged,
      runSparkStep: async () => {
        attempts++;
        throw ApplicationFailure.nonRetryable('Spark step exited with code 1\n--- stderr tail ---\nAnalysisException: [PATH_NOT_FOUND]', 'SparkJobFailed');
      },
    },
    input({ runId: 'run-2' }),
  );
  const err = (await run.then(() => undefined, (e: unknown) => e)) as WorkflowFailedError;
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = err.cause?.cause as ApplicationFailure; // ActivityFailure -> ApplicationFailure
  expect(failure.type).toBe('SparkJobFailed');
  expect(failure.message).toContain('AnalysisException: [PATH_NOT_FOUND]');
  expect(attempts).toBe(1);
});
