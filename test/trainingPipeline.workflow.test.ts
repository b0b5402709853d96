/**
 * The `trainingPipeline` workflow on the real Temporal dev server, with the activities replaced by
 * recording fakes: stage wiring, the grid-search fan-out (bounded concurrency, ids, best point),
 * input validation, failure propagation, progress and cancellation.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { makeRequestCancellation, type Activities } from '../src/activities';
import type { AlsPoint } from '../src/contracts/experiment';
import { sparkTaskQueueOf } from '../src/contracts/jobInputs';
import type { JobName } from '../src/contracts/jobResults';
import type { TrainingPipelineInput, TrainingPipelineResult } from '../src/contracts/pipeline';
import type { RegisterModelInput, RegistryDecision } from '../src/contracts/registry';
import type { RunSparkStepInput } from '../src/contracts/sparkStep';
import type { StageDatasetResult } from '../src/contracts/stage';
import { loadSettings } from '../src/settings';
import { cancelSignal, progressQuery, trainingPipeline } from '../src/workflows';
import { waitFor } from './helpers/waitFor';

const settings = loadSettings();
let nativeConnection: NativeConnection;
let client: Client;
let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../src/workflows') });
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
  contentSha256: 'a'.repeat(64),
};
const metrics = (rmse: number) => ({ rmse, mae: rmse * 0.8, precision_at_k: 0.1, recall_at_k: 0.05, ndcg_at_k: 0.12, map_at_k: 0.04, catalogue_coverage: 0.2 });
const fold = (i: number) => ({ fold: i, train: `s3://lensflow/wf/folds/${i}/train`, test: `s3://lensflow/wf/folds/${i}/test`, nTrain: 80, nTest: 20 });

/** A fake RMSE surface: best at rank 12, regParam 0.1. */
const fakeRmse = (p: AlsPoint) => 0.9 + Math.abs(p.rank - 12) / 100 + Math.abs(p.regParam - 0.1);

/** Fake CV surfaces of two families: bias_als's RMSE is lowest at rank 20; implicit_als's NDCG@k grows with alpha. */
const fakeBiasRmse = (p: Record<string, number>) => 0.86 + Math.abs(p.rank! - 20) / 1000;
const fakeNdcg = (p: Record<string, number>) => (20 + p.alpha!) / 100;

/** Results a fake Spark step returns, per job, shaped like the real contracts. */
function fakeResult(input: RunSparkStepInput): unknown {
  const arg = (name: string) => input.input[name] as string;
  const job = input.job as JobName;
  switch (job) {
    case 'clean':
      return { job, dataset: 'ml-latest-small', outputs: { ratings: 's3://lensflow/wf/p/ratings', movies: 's3://lensflow/wf/p/movies' }, counts: { ratings: { raw: 10, clean: 9, quarantined: { missing_value: 1 } }, movies: { raw: 3, clean: 3, quarantined: {} } } };
    case 'split':
      return { job, protocol: input.input.protocol, cv: [fold(0), fold(1)], evaluation: [fold(9)] };
    case 'als_point': {
      const point = input.input.point as AlsPoint;
      const rmse = fakeRmse(point);
      return { job, point, folds: [{ fold: 0, rmse, mae: rmse * 0.8, nTest: 20, nPredicted: 20 }], mean: { rmse, mae: rmse * 0.8 }, std: { rmse: 0, mae: 0 } };
    }
    case 'model_point': {
      const { family, point } = input.input as { family: string; point: Record<string, number> };
      const objective = family === 'bias_als' ? 'rmse' : 'ndcg_at_k';
      const scores = family === 'bias_als' ? { rmse: fakeBiasRmse(point), mae: 0.7 } : { ndcg_at_k: fakeNdcg(point) };
      return { job, family, point, objective, folds: [{ fold: 0, nTest: 20, scores }], mean: scores, std: { [objective]: 0 }, fitSeconds: 0.1 };
    }
    case 'train_final':
      return { job, ...(input.input.family ? { family: input.input.family } : {}), point: input.input.point, modelUri: arg('model'), nRatings: 9, nUsers: 3, nMovies: 3 };
    case 'evaluate': {
      const families = Object.keys((input.input.families ?? {}) as object);
      const models = { als: metrics(0.88), global_mean: metrics(1.04), user_item_bias: metrics(0.9), most_popular: metrics(1.0) };
      return { job, point: input.input.point, ranking: input.input.ranking, folds: 1, models: { ...models, ...Object.fromEntries(families.map((f) => [f, metrics(0.86)])) } };
    }
    case 'analysis':
      return { job, outputs: { top_movies: `${arg('output')}top_movies` }, summaryUri: `${arg('output')}summary.json`, summary: { sparsity: 0.98 } };
    case 'recommend':
      return { job, n: 10, outputs: { userRecs: 'a', userRecsJson: 'b', similarMovies: 'c', similarMoviesJson: 'd' }, nUsers: 3 };
    case 'report':
      return { job, reportUri: `${arg('output')}report.html`, plots: {} };
  }
}

interface Recorder {
  spark: RunSparkStepInput[];
  activityIds: string[];
  maxConcurrent: number;
  registered: RegisterModelInput[];
  documents: { uri: string; document: unknown }[];
}

function fakeActivities(rec: Recorder, overrides: Partial<Activities> = {}): Partial<Activities> {
  let running = 0;
  return {
    stageDataset: async () => staged,
    claimRunId: async (input) => ({ runId: input.runId, attempt: 1, resumed: false }),
    runSparkStep: (async (input: RunSparkStepInput) => {
      rec.spark.push(input);
      rec.activityIds.push(Context.current().info.activityId);
      running++;
      rec.maxConcurrent = Math.max(rec.maxConcurrent, running);
      try {
        await new Promise((r) => setTimeout(r, 30));
        return { step: { name: input.job, actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: ['spark-submit'] } }, result: fakeResult(input), reused: false, durationSeconds: 0.03 };
      } finally {
        running--;
      }
    }) as Activities['runSparkStep'],
    registerModel: async (input: RegisterModelInput): Promise<RegistryDecision> => {
      rec.registered.push(input);
      const challenger = { ...input.challenger, registeredAt: '2026-11-24T00:00:00Z' };
      return { decision: 'promoted', reason: 'no champion yet', challenger, champion: null, decisionUri: 's3://x/d', championUri: 's3://x/c' };
    },
    requestCancellation: makeRequestCancellation(client),
    writeResultDocument: async (input: { uri: string; document: unknown }) => void rec.documents.push(input),
    ...overrides,
  };
}

const newRecorder = (): Recorder => ({ spark: [], activityIds: [], maxConcurrent: 0, registered: [], documents: [] });

/** The warm engine's job activities (`<taskQueue>-spark`, one per job), served by the same fake. */
function sparkJobActivities(activities: Partial<Activities>) {
  const jobs = ['clean', 'split', 'als_point', 'model_point', 'train_final', 'evaluate', 'analysis', 'recommend', 'report'] as const;
  return Object.fromEntries(jobs.map((job) => [job, (req: Omit<RunSparkStepInput, 'job'>) => activities.runSparkStep!({ ...req, job } as never)]));
}

async function withWorker<T>(activities: Partial<Activities>, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `test-pipeline-${randomBytes(4).toString('hex')}`;
  const worker = await Worker.create({ connection: nativeConnection, taskQueue, workflowBundle, activities });
  const sparkWorker = await Worker.create({ connection: nativeConnection, taskQueue: sparkTaskQueueOf(taskQueue), activities: sparkJobActivities(activities) });
  return sparkWorker.runUntil(() => worker.runUntil(fn(taskQueue)));
}

const input = (over: Partial<TrainingPipelineInput> = {}): TrainingPipelineInput => ({
  dataset: 'ml-latest-small',
  bucket: 'lensflow',
  prefix: 'wf',
  runId: `run-${randomBytes(3).toString('hex')}`,
  grid: { rank: [8, 12, 16], regParam: [0.05, 0.1] },
  maxConcurrentSteps: 2,
  ...over,
});

test('runs every stage in order, fans the grid out two at a time, and picks the best point', async () => {
  const rec = newRecorder();
  const args = input();
  const result = await withWorker(fakeActivities(rec), (taskQueue) =>
    client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-${args.runId}`, args: [args] }),
  );

  const jobs = rec.spark.map((s) => s.job);
  expect(jobs.slice(0, 2)).toEqual(['clean', 'split']);
  expect(jobs.filter((j) => j === 'als_point')).toHaveLength(6);
  expect(jobs.slice(8, 11).sort()).toEqual(['analysis', 'evaluate', 'train_final']);
  expect(jobs.slice(11)).toEqual(['recommend', 'report']);
  expect(rec.maxConcurrent).toBe(2);

  expect(rec.activityIds.filter((id) => id.startsWith('grid-')).sort()).toEqual([
    'grid-000-rank8-reg0.05-iter10',
    'grid-001-rank8-reg0.1-iter10',
    'grid-002-rank12-reg0.05-iter10',
    'grid-003-rank12-reg0.1-iter10',
    'grid-004-rank16-reg0.05-iter10',
    'grid-005-rank16-reg0.1-iter10',
  ]);
  // Every grid point reads the same folds, written once by `split`.
  const foldArgs = new Set(rec.spark.filter((s) => s.job === 'als_point').map((s) => JSON.stringify(s.input.folds)));
  expect(foldArgs.size).toBe(1);

  expect(result.best.point).toMatchObject({ rank: 12, regParam: 0.1 });
  expect(result.grid).toHaveLength(6);
  expect(result.test.als.rmse).toBe(0.88);
  expect(result.outputs.model).toBe(`s3://lensflow/wf/runs/${args.runId}/model/`);
  expect(result.stages.map((s) => s.stage)).toEqual(['stage', 'clean', 'split', 'grid', 'train-evaluate-analyse', 'recommend', 'report', 'register']);
  expect(rec.registered).toHaveLength(1);
  expect(rec.registered[0]!.challenger).toMatchObject({ runId: args.runId, dataKey: staged.contentSha256, metrics: metrics(0.88) });

  // The result is the compact summary; the full document, with every job's result, went to S3.
  expect(result.resultUri).toBe(`s3://lensflow/wf/runs/${args.runId}/results/pipeline.json`);
  expect(rec.documents.map((d) => d.uri)).toEqual([result.resultUri]);
  const full = rec.documents[0]!.document as TrainingPipelineResult;
  expect(full.details.grid).toHaveLength(6);
  expect(full.best).toEqual(result.best);
  expect(full.test).toEqual(result.test);
});

test('from 8 grid points the search halves over the CV folds: every point on the first fold, the better half on the next', async () => {
  const rec = newRecorder();
  const grid = { rank: [8, 12, 16, 20], regParam: [0.05, 0.1] };
  const args = input({ grid, register: false });
  const [result, progress] = await withWorker(fakeActivities(rec), async (taskQueue) => {
    const handle = await client.workflow.start(trainingPipeline, { taskQueue, workflowId: `test-${args.runId}`, args: [args] });
    return [await handle.result(), (await handle.query(progressQuery)).grid] as const;
  });

  // 8 points on fold 0, then the 4 best of them (fake RMSE 0.90, 0.94, 0.94, 0.95) on fold 1.
  const steps = rec.spark.filter((s) => s.job === 'als_point');
  expect(steps).toHaveLength(12);
  const ids = rec.activityIds.filter((id) => /^grid-\d/.test(id));
  expect(ids.filter((id) => id.endsWith('-fold0'))).toHaveLength(8);
  expect(ids.filter((id) => id.endsWith('-fold1')).sort()).toEqual([
    'grid-001-rank8-reg0.1-iter10-fold1',
    'grid-002-rank12-reg0.05-iter10-fold1',
    'grid-003-rank12-reg0.1-iter10-fold1',
    'grid-005-rank16-reg0.1-iter10-fold1',
  ]);
  // Each step scores one fold, named in its result's file.
  for (const step of steps) {
    const f = Number(/-fold(\d)$/.exec(step.resultName)![1]);
    expect(step.input.folds).toEqual([fold(f)]);
  }
  expect(progress).toEqual({ done: 12, total: 12 });

  expect(result.best).toMatchObject({ point: { rank: 12, regParam: 0.1 }, rmse: 0.9, folds: 2 });
  const full = rec.documents[0]!.document as TrainingPipelineResult;
  expect(full.grid.map((r) => r.folds)).toEqual([1, 2, 2, 2, 1, 2, 1, 1]);
  expect(full.details.grid).toHaveLength(12);

  // The same grid with halving off: one step per point, every fold in it.
  const off = newRecorder();
  const offArgs = input({ grid: { ...grid, halving: false }, register: false });
  const offResult = await withWorker(fakeActivities(off), (taskQueue) =>
    client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-${offArgs.runId}`, args: [offArgs] }),
  );
  const offSteps = off.spark.filter((s) => s.job === 'als_point');
  expect(offSteps).toHaveLength(8);
  expect(offSteps.every((s) => (s.input.folds as unknown[]).length === 2)).toBe(true);
  expect(offResult.best.point).toEqual(result.best.point);
});

test('ties on RMSE go to the simpler model: smaller rank, then larger regParam', async () => {
  const rec = newRecorder();
  const flat = fakeActivities(rec, {
    runSparkStep: (async (i: RunSparkStepInput) => {
      const r = fakeResult(i) as { mean?: { rmse: number } };
      if (i.job === 'als_point') r.mean!.rmse = 0.95; // every point equally good
      return { step: { name: i.job, actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: ['spark-submit'] } }, result: r, reused: false, durationSeconds: 0 };
    }) as Activities['runSparkStep'],
  });
  const args = input({ register: false });
  const result = await withWorker(flat, (taskQueue) => client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-${args.runId}`, args: [args] }));
  expect(result.best.point).toMatchObject({ rank: 8, regParam: 0.1 });
  expect(result.registry).toBeNull();
});

test('searches each model family on the same folds, selects each by its own objective, evaluates them beside ALS, registers the best rating model', async () => {
  const rec = newRecorder();
  const families = { bias_als: { rank: [10, 20], reg_param: [0.1] }, implicit_als: { rank: [8], alpha: [1, 10] } };
  const args = input({ families });
  const result = await withWorker(fakeActivities(rec), (taskQueue) =>
    client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-${args.runId}`, args: [args] }),
  );

  expect(rec.activityIds.filter((id) => id.startsWith('grid-') && !/^grid-\d/.test(id)).sort()).toEqual([
    'grid-bias_als-000-rank10-reg_param0.1',
    'grid-bias_als-001-rank20-reg_param0.1',
    'grid-implicit_als-000-rank8-alpha1',
    'grid-implicit_als-001-rank8-alpha10',
  ]);
  const gridSteps = rec.spark.filter((s) => s.job === 'als_point' || s.job === 'model_point');
  expect(gridSteps).toHaveLength(10);
  expect(new Set(gridSteps.map((s) => JSON.stringify(s.input.folds))).size).toBe(1);
  expect(rec.maxConcurrent).toBe(2);

  const full = rec.documents[0]!.document as TrainingPipelineResult;
  // Lower CV RMSE wins for the rating family, higher CV NDCG@k for the ranking one.
  expect(full.families!.best.bias_als).toMatchObject({ objective: 'rmse', point: { rank: 20, reg_param: 0.1 }, score: 0.86 });
  expect(full.families!.best.implicit_als).toMatchObject({ objective: 'ndcg_at_k', point: { rank: 8, alpha: 10 }, score: 0.3 });
  expect(full.families!.grid).toHaveLength(4);
  // bias_als (CV RMSE 0.86) beats ALS's best (0.9): it is trained on all ratings and registered.
  expect(full.families!.rating).toEqual({ family: 'bias_als', point: { rank: 20, reg_param: 0.1 }, cv: 0.86 });
  expect(full.families!.ranking).toEqual({ family: 'implicit_als', point: { rank: 8, alpha: 10 }, cv: 0.3 });
  const evaluate = rec.spark.find((s) => s.job === 'evaluate')!;
  expect(evaluate.input.families).toEqual({ bias_als: { rank: 20, reg_param: 0.1 }, implicit_als: { rank: 8, alpha: 10 } });
  expect(Object.keys(result.test).sort()).toEqual(['als', 'bias_als', 'global_mean', 'implicit_als', 'most_popular', 'user_item_bias']);
  const finals = rec.spark.filter((s) => s.job === 'train_final');
  expect(finals.map((s) => s.input.family)).toEqual([undefined, 'bias_als']);
  expect(rec.registered[0]!.challenger).toMatchObject({ family: 'bias_als', point: { rank: 20, reg_param: 0.1 }, metrics: metrics(0.86), modelUri: `s3://lensflow/wf/runs/${args.runId}/model/bias_als/` });
  expect(rec.spark.find((s) => s.job === 'report')!.input.families).toBe(`s3://lensflow/wf/runs/${args.runId}/results/families/`);
  expect(rec.spark.find((s) => s.job === 'model_point')!.resultName).toMatch(/^families\/grid-/);
});

test('a family grid that names plain ALS, a baseline or an unknown family is refused before any activity runs', async () => {
  const rec = newRecorder();
  const refuse = (families: unknown) =>
    withWorker(fakeActivities(rec), (taskQueue) =>
      client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-bad-${randomBytes(3).toString('hex')}`, args: [input({ families } as never)] }),
    ).then(() => undefined, (e: unknown) => ((e as WorkflowFailedError).cause as ApplicationFailure).message);
  expect(await refuse({ als: { rank: [4] } })).toContain('plain ALS is searched by `grid`');
  expect(await refuse({ most_popular: {} })).toContain('most_popular is a baseline with nothing to tune');
  expect(await refuse({ deep_magic: {} })).toContain('unknown model family "deep_magic"');
  expect(await refuse({ bias_als: { regParam: [0.1] } })).toContain("snake_case hyperparameter names");
  expect(rec.spark).toHaveLength(0);
});

test('rejects invalid input before any activity runs', async () => {
  const rec = newRecorder();
  const err = await withWorker(fakeActivities(rec), (taskQueue) =>
    client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-bad-${randomBytes(3).toString('hex')}`, args: [input({ bucket: 'Not_A_Bucket', grid: { rank: [] } })] }),
  ).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('InvalidInput');
  expect(cause.message).toContain('not a valid S3 bucket name');
  expect(cause.message).toContain('grid.rank');
  expect(rec.spark).toHaveLength(0);
});

test('a permanent Spark failure fails the run once, with the job error text, without retries', async () => {
  let attempts = 0;
  const rec = newRecorder();
  const failing = fakeActivities(rec, {
    runSparkStep: (async () => {
      attempts++;
      throw ApplicationFailure.nonRetryable('Spark step exited with code 1\n--- stderr tail ---\nAnalysisException: [PATH_NOT_FOUND]', 'SparkJobFailed');
    }) as Activities['runSparkStep'],
  });
  const args = input();
  const err = (await withWorker(failing, (taskQueue) =>
    client.workflow.execute(trainingPipeline, { taskQueue, workflowId: `test-${args.runId}`, args: [args] }),
  ).then(() => undefined, (e: unknown) => e)) as WorkflowFailedError;
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = err.cause?.cause as ApplicationFailure; // ActivityFailure -> ApplicationFailure
  expect(failure.type).toBe('SparkJobFailed');
  expect(failure.message).toContain('AnalysisException: [PATH_NOT_FOUND]');
  expect(attempts).toBe(1);
});

describe('progress and cancellation during the grid search', () => {
  /** Grid points block (heartbeating) until cancelled, so the run sits in the grid stage. */
  function blockingGrid(rec: Recorder, cancelled: string[]): Partial<Activities> {
    const base = fakeActivities(rec);
    return {
      ...base,
      runSparkStep: (async (i: RunSparkStepInput) => {
        if (i.job !== 'als_point') return base.runSparkStep!(i as never);
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat(), 200);
        try {
          await ctx.cancelled;
        } catch (err) {
          cancelled.push(ctx.info.activityId);
          throw err;
        } finally {
          clearInterval(beat);
        }
        throw new Error('unreachable');
      }) as Activities['runSparkStep'],
    };
  }

  for (const how of ['signal', 'workflow cancellation'] as const) {
    test(`by ${how}: running steps are cancelled, nothing is registered, the run ends cancelled`, async () => {
      const rec = newRecorder();
      const cancelled: string[] = [];
      const args = input();
      await withWorker(blockingGrid(rec, cancelled), async (taskQueue) => {
        const handle = await client.workflow.start(trainingPipeline, { taskQueue, workflowId: `test-${args.runId}`, args: [args] });
        let last: unknown;
        const progress = await waitFor(
          'the progress query to answer stage "grid"',
          async () => {
            const p = await handle.query(progressQuery);
            last = p;
            return p.stage === 'grid' ? p : undefined;
          },
          { seen: () => last },
        );
        expect(progress).toMatchObject({ runId: args.runId, stage: 'grid', grid: { done: 0, total: 6 }, stagesDone: ['stage', 'clean', 'split'] });

        if (how === 'signal') await handle.signal(cancelSignal, 'test');
        else await handle.cancel();
        const err = await handle.result().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
        const described = await handle.describe();
        expect(described.status.name).toBe('CANCELLED');
        expect(described.memo).toMatchObject({ finishedStages: ['stage', 'clean', 'split'] });
      });
      expect(cancelled.sort()).toEqual(['grid-000-rank8-reg0.05-iter10', 'grid-001-rank8-reg0.1-iter10']);
      expect(rec.registered).toHaveLength(0);
    });
  }
});
