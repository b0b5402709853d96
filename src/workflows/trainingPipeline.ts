/**
 * Workflow `trainingPipeline`: stage → clean → split → grid search → final training, evaluation and
 * analysis → recommendations → report → register. Deterministic orchestration only: every side
 * effect is an activity, and payloads carry S3 URIs, never data.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  proxyLocalActivities,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { AlsPoint, FamilyPoint } from '../contracts/experiment';
import { MODEL_FAMILIES, type FamilyName } from '../contracts/models';
import { JobInputs, servedRanking, sparkTaskQueueOf, type JobInputOf, type JobRequest, type JobRun } from '../contracts/jobInputs';
import type { AlsPointResult, JobName, JobResultOf } from '../contracts/jobResults';
import {
  TrainingPipelineInput,
  RUN_LAYOUT,
  runIdFromWorkflowId,
  runLayout,
  type ChosenModel,
  type FamiliesOutcome,
  type FamilyRow,
  type GridRow,
  type PipelineProgress,
  type TrainingPipelineConfig,
  type TrainingPipelineResult,
} from '../contracts/pipeline';
import { runIdentity } from '../contracts/runClaim';
import type { RunnerSpec } from '../contracts/runner';
import type { PipelineSummary } from '../contracts/summary';
import { bestByObjective, bestRow, expandFamilyGrid, expandGrid, familyActivityId, gridActivityId } from './grid';
import { contenders, halvingSchedule, raceRow, useHalving, type RaceEntry } from './halving';
import { limiter } from './limiter';
import { summarise } from './summary';

/** Asks the run to stop: running Spark steps are cancelled, nothing is promoted. */
export const cancelSignal = defineSignal<[reason?: string]>('cancel');
/** Where the run is: stage, grid points done/total, best point so far. */
export const progressQuery = defineQuery<PipelineProgress>('progress');

const stagingActivities = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2s', maximumAttempts: 5 },
});

/**
 * The warm local Spark engine (`lensflow_spark.worker`, a Python worker on `<taskQueue>-spark`):
 * one activity per job, named after the job.
 */
type SparkJobActivities = { [J in JobName]: (request: JobRequest<J>) => Promise<JobRun<JobResultOf<J>>> };

// Spark jobs heartbeat every 2 s (the warm engine with Spark's progress, a step runner with the
// handle of the running step): a lost worker is noticed within the heartbeat timeout, and the
// retry runs the job again (or resumes the step, or finds its result in S3 and does not run it
// again). The workflow waits for a cancelled job to be really stopped.
const sparkOptions: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '15s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumAttempts: 4 },
};

const { requestCancellation } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 10 },
});

const clusterActivities = proxyActivities<Activities>({
  startToCloseTimeout: '45 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10s', maximumAttempts: 3 },
});

const registryActivities = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2s', maximumAttempts: 5 },
});

export async function trainingPipeline(rawInput: TrainingPipelineInput): Promise<PipelineSummary> {
  const parsed = TrainingPipelineInput.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid trainingPipeline input:\n${z.prettifyError(parsed.error)}`, 'InvalidInput');
  }
  const config: TrainingPipelineConfig = parsed.data;
  const runId = config.runId ?? runIdFromWorkflowId(workflowInfo().workflowId);
  const progress: PipelineProgress = { runId, stage: 'starting', stagesDone: [], grid: { done: 0, total: 0 }, best: null, cancelRequested: null };
  const stages: TrainingPipelineResult['stages'] = [];
  setHandler(progressQuery, () => progress);

  // The signal has the server cancel this very execution (a workflow may not cancel itself
  // directly), so both ways of stopping a run take one path: running activities are cancelled and
  // the run closes with status Canceled.
  setHandler(cancelSignal, async (reason) => {
    if (progress.cancelRequested) return;
    progress.cancelRequested = reason ?? 'cancel signal';
    await requestCancellation({ workflowId: workflowInfo().workflowId, runId: workflowInfo().runId });
  });
  upsertSearchAttributes({ LensflowDataset: [config.dataset], LensflowStatus: ['running'] });

  // A transient EMR cluster lives exactly as long as the run: created here, terminated in `finally`
  // even when the run fails or is cancelled.
  let clusterId: string | undefined;
  try {
    if (config.runner.kind === 'emr' && config.runner.transient) {
      progress.stage = 'emr-cluster';
      clusterId = (await clusterActivities.createEmrCluster({
        runId, spec: config.runner.transient, bucket: config.bucket, prefix: config.prefix, stepConcurrencyLevel: config.maxConcurrentSteps,
      })).clusterId;
      config.runner = { kind: 'emr', clusterId };
      upsertMemo({ emrClusterId: clusterId });
    } else if (config.runner.kind === 'emr') {
      // An existing cluster keeps EMR's default of one step at a time unless raised (ModifyCluster).
      config.runner = { ...config.runner, stepConcurrencyLevel: config.maxConcurrentSteps };
    }
    const result = await runStages(config, runId, progress, stages);
    upsertSearchAttributes({ LensflowStatus: [result.registry?.decision ?? 'completed'] });
    return result;
  } catch (err) {
    const status = isCancellation(err) ? 'cancelled' : 'failed';
    progress.stage = status;
    // Recorded where the Web UI and `lensflow status` show it, even though the run has no result.
    upsertMemo({ finishedStages: stages.map((s) => s.stage), cancelReason: progress.cancelRequested ?? undefined });
    upsertSearchAttributes({ LensflowStatus: [status] });
    throw err;
  } finally {
    if (clusterId) {
      const id = clusterId;
      await CancellationScope.nonCancellable(() => clusterActivities.terminateEmrCluster(id));
    }
  }
}

async function runStages(
  config: TrainingPipelineConfig,
  runId: string,
  progress: PipelineProgress,
  stages: TrainingPipelineResult['stages'],
): Promise<PipelineSummary> {
  let layout = runLayout(config.bucket, config.prefix, runId);
  const runner: RunnerSpec = config.runner;
  const limit = limiter(config.maxConcurrentSteps);

  async function timed<T>(stage: string, fn: () => Promise<T>, reused: (t: T) => boolean = () => false): Promise<T> {
    progress.stage = stage;
    const t0 = Date.now();
    const out = await fn();
    stages.push({ stage, seconds: (Date.now() - t0) / 1000, reused: reused(out) });
    progress.stagesDone.push(stage);
    return out;
  }

  /**
   * Runs one Spark job as one activity, with a readable deterministic activity id: on the warm
   * local engine, or as a step on EMR. Its result goes to `results/<resultName>.json` of the run.
   */
  async function spark<J extends JobName>(job: J, activityId: string, input: JobInputOf<J>, resultName: string = job): Promise<JobRun<JobResultOf<J>>> {
    const request: JobRequest<J> = { runId, bucket: config.bucket, prefix: config.prefix, resultName, input: JobInputs[job].parse(input) as JobInputOf<J> };
    return limit(() => {
      if (runner.kind === 'local') {
        const jobs = proxyActivities<SparkJobActivities>({ ...sparkOptions, activityId, taskQueue: sparkTaskQueueOf(workflowInfo().taskQueue) });
        return (jobs[job] as SparkJobActivities[J])(request);
      }
      const { runSparkStep } = proxyActivities<Activities>({ ...sparkOptions, activityId });
      return runSparkStep<J>({ ...request, job, runner });
    });
  }
  const model = (name: string) => ({ seed: config.seed, checkpoint: layout.checkpointUri(name) });

  const staged = await timed(
    'stage',
    () => stagingActivities.stageDataset({ dataset: config.dataset, source: config.source, bucket: config.bucket, prefix: config.prefix }),
    (s) => s.files.every((f) => f.action === 'unchanged'),
  );

  // Bind the run id to this input before anything is written under it: another input is refused,
  // the same one resumes, a rerun gets a fresh attempt. (Histories from before have no claim.)
  if (patched('claim-run-id')) {
    const claim = await stagingActivities.claimRunId({
      bucket: config.bucket,
      prefix: config.prefix,
      runId,
      rerun: config.rerun,
      input: runIdentity(config, staged.contentSha256),
      execution: workflowInfo().runId,
    });
    runId = progress.runId = claim.runId;
    layout = runLayout(config.bucket, config.prefix, runId);
  }

  const clean = await timed(
    'clean',
    () => spark('clean', 'clean', { dataset: config.dataset, raw: staged.rawUri, output: layout.processedUri }),
    (r) => r.reused,
  );
  const ratingsUri = clean.result.outputs.ratings;
  const moviesUri = clean.result.outputs.movies;

  const split = await timed(
    'split',
    () => spark('split', 'split', { ratings: ratingsUri, raw: staged.rawUri, protocol: config.split, output: layout.foldsUri }),
    (r) => r.reused,
  );

  // Grid search: one activity per point (a Spark step is one unit of work with its own retries and
  // heartbeats, so a child workflow per point would only add history), at most
  // `maxConcurrentSteps` at once, with ids that name the point in the Web UI. Plain ALS's grid and
  // each searched family's grid share the limit; every point sees the same CV folds.
  const points = expandGrid(config.grid);
  const familyPoints = Object.entries(config.families ?? {}).flatMap(([family, grid]) =>
    expandFamilyGrid(grid).map((point, index) => ({ family: family as FamilyName, point, index })),
  );
  const cv = split.result.cv;
  // Runs recorded before successive halving was wired cross-validated every point (patch marker).
  const halving = cv.length > 1 && useHalving(points.length, config.grid.halving) && patched('grid-successive-halving');
  const alsSteps = halving ? halvingSchedule(points.length, cv.length).reduce((a, b) => a + b, 0) : points.length;
  progress.grid = { done: 0, total: alsSteps + familyPoints.length };

  /** Every point on every CV fold: one step per point. */
  async function crossValidate() {
    const done = await Promise.all(
      points.map(async (point: AlsPoint, index: number) => {
        // Named after the point, so a result is only ever reused for the very same point.
        const activityId = gridActivityId(index, point);
        const { result } = await spark('als_point', activityId, { folds: cv, point, ...model(`grid-${index}`) }, `${RUN_LAYOUT.gridResults}/${activityId}`);
        const row: GridRow = { index, point, rmse: result.mean.rmse, mae: result.mean.mae, rmseStd: result.std.rmse };
        progress.grid.done++;
        progress.best = bestRow(progress.best ? [progress.best, row] : [row]);
        return { row, result };
      }),
    );
    return { rows: done.map((d) => d.row), results: done.map((d) => d.result) };
  }

  /**
   * Successive halving (`halving.ts`): one step per point and fold. Every point is scored on the
   * first fold, the better half of them on the next, and so on; the rows hold each point's means
   * over the folds it reached, and the best point is the best of those that reached the last.
   */
  async function race() {
    const entries: RaceEntry[] = points.map((point, index) => ({ index, point, foldRmse: [], foldMae: [] }));
    const results: AlsPointResult[] = [];
    for (let f = 0; f < cv.length; f++) {
      await Promise.all(
        contenders(entries, f, cv.length).map(async (index) => {
          const entry = entries[index]!;
          const activityId = `${gridActivityId(index, entry.point)}-fold${f}`;
          const { result } = await spark('als_point', activityId, { folds: [cv[f]!], point: entry.point, ...model(`grid-${index}-fold${f}`) }, `${RUN_LAYOUT.gridResults}/${activityId}`);
          entry.foldRmse.push(result.mean.rmse);
          entry.foldMae.push(result.mean.mae);
          results.push(result);
          progress.grid.done++;
          progress.best = bestRow(entries.filter((e) => e.foldRmse.length > 0).map(raceRow));
        }),
      );
    }
    return { rows: entries.map(raceRow), results };
  }

  const [grid, familyGrid] = await timed('grid', () =>
    Promise.all([
      halving ? race() : crossValidate(),
      Promise.all(
        familyPoints.map(async ({ family, point, index }) => {
          const activityId = familyActivityId(family, index, point);
          const input = { family, point, folds: split.result.cv, ranking: config.ranking, ...model(activityId) };
          const { result } = await spark('model_point', activityId, input, `${RUN_LAYOUT.familyResults}/${activityId}`);
          progress.grid.done++;
          const row: FamilyRow = { family, index, point, objective: result.objective, score: result.mean[result.objective]!, scoreStd: result.std[result.objective] ?? 0 };
          return { row, result };
        }),
      ),
    ]),
  );
  const rows = grid.rows;
  const best = bestRow(rows)!;
  upsertMemo({ bestPoint: best.point, bestCvRmse: best.rmse });
  const families = familyGrid.length > 0 ? chooseModels(best, familyGrid.map((g) => g.row), familyGrid.map((g) => g.result)) : undefined;
  const familyBest: Partial<Record<FamilyName, FamilyPoint>> | undefined = families
    ? Object.fromEntries(Object.entries(families.best).map(([f, r]) => [f, r!.point]))
    : undefined;

  // Final model, evaluation against the baselines, and analysis are independent of each other.
  const point = best.point;
  const [final, evaluation, analysis] = await timed('train-evaluate-analyse', () =>
    Promise.all([
      spark('train_final', 'train-final', { ratings: ratingsUri, point, model: layout.modelUri, ...model('final') }),
      spark('evaluate', 'evaluate', { folds: split.result.evaluation, movies: moviesUri, point, families: familyBest, ranking: config.ranking, ...model('evaluate') }),
      spark('analysis', 'analysis', { ratings: ratingsUri, movies: moviesUri, output: layout.analysisUri }),
    ]),
  );

  // A family that beats ALS on CV RMSE is the champion: fitted on all clean ratings like ALS.
  const champion = families && families.rating.family !== 'als' ? families.rating : null;
  const championModel = champion
    ? await timed('train-champion', () =>
        spark('train_final', `train-final-${champion.family}`, { ratings: ratingsUri, family: champion.family, point: champion.point, model: `${layout.modelUri}${champion.family}/`, ...model(`final-${champion.family}`) }, `train_final-${champion.family}`),
      )
    : final;

  const recommendations = await timed('recommend', () =>
    spark('recommend', 'recommend', {
      ranking: servedRanking(families?.ranking ?? null),
      ratings: ratingsUri,
      movies: moviesUri,
      n: config.recommendations,
      output: layout.recommendationsUri,
      ...model('recommend'),
    }),
  );

  const report = await timed('report', () =>
    spark('report', 'report', {
      dataset: config.dataset,
      clean: layout.resultUri('clean'),
      analysis: analysis.result.summaryUri,
      grid: layout.gridResultsUri,
      evaluation: layout.resultUri('evaluate'),
      ...(families ? { families: layout.familyResultsUri } : {}),
      output: layout.reportUri,
    }),
  );

  const registry = config.register
    ? await timed('register', () =>
        registryActivities.registerModel({
          bucket: config.bucket,
          prefix: config.prefix,
          challenger: {
            runId,
            dataset: config.dataset,
            protocolKey: JSON.stringify({ split: config.split, ranking: config.ranking }),
            dataKey: staged.contentSha256,
            ...(champion ? { family: champion.family } : {}),
            point: champion ? champion.point : best.point,
            metrics: evaluation.result.models[champion?.family ?? 'als']!,
            modelUri: championModel.result.modelUri,
          },
        }),
      )
    : null;

  progress.stage = 'done';
  const full: TrainingPipelineResult = {
    runId,
    dataset: config.dataset,
    runUri: layout.runUri,
    best,
    grid: rows,
    test: evaluation.result.models,
    ...(families ? { families } : {}),
    outputs: {
      processed: layout.processedUri,
      model: final.result.modelUri,
      recommendations: recommendations.result.outputs.userRecsJson,
      analysis: analysis.result.summaryUri,
      report: report.result.reportUri,
    },
    registry,
    staged,
    clean: clean.result,
    details: {
      evaluation: evaluation.result,
      final: final.result,
      analysis: analysis.result,
      recommendations: recommendations.result,
      report: report.result,
      grid: grid.results,
    },
    stages,
  };
  // The full document goes to S3 and the result is its compact summary (a few KB in the Web UI).
  // Runs recorded before this change returned the full document and replay without the write.
  const resultUri = layout.resultUri('pipeline');
  if (patched('result-document-in-s3')) await stagingActivities.writeResultDocument({ uri: resultUri, document: full });
  return summarise(full, resultUri);
}

/**
 * Each searched family's best point by its own objective; then the best rating model by CV RMSE
 * among ALS's best point and the rating families' (the registered champion) and the best ranking
 * model by CV NDCG@k (what is served). Every CV score here comes from the same folds.
 */
function chooseModels(als: GridRow, rows: FamilyRow[], details: FamiliesOutcome['details']): FamiliesOutcome {
  const best: FamiliesOutcome['best'] = {};
  for (const family of new Set(rows.map((r) => r.family))) best[family] = bestByObjective(rows.filter((r) => r.family === family))!;
  const winners = Object.values(best) as FamilyRow[];
  const contender = (kind: 'rating' | 'ranking') =>
    winners.filter((r) => MODEL_FAMILIES[r.family].kind === kind).map((r, index) => ({ ...r, index }));
  // ALS first: a family has to beat it beyond the tolerance to take its place.
  const rating = bestByObjective([{ family: 'als' as FamilyName, index: -1, point: als.point, objective: 'rmse' as const, score: als.rmse, scoreStd: als.rmseStd }, ...contender('rating')])!;
  const ranking = bestByObjective(contender('ranking'));
  const chosen = (r: { family: FamilyName; point: ChosenModel['point']; score: number }): ChosenModel => ({ family: r.family, point: r.point, cv: r.score });
  return { grid: rows, best, rating: chosen(rating), ranking: ranking ? chosen(ranking) : null, details };
}
