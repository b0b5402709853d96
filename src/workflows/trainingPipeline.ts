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
import type { AlsPoint } from '../contracts/experiment';
import { JobInputs, sparkTaskQueueOf, type JobInputOf, type JobRequest, type JobRun } from '../contracts/jobInputs';
import type { JobName, JobResultOf } from '../contracts/jobResults';
import {
  TrainingPipelineInput,
  runIdFromWorkflowId,
  runLayout,
  type GridRow,
  type PipelineProgress,
  type TrainingPipelineConfig,
  type TrainingPipelineResult,
} from '../contracts/pipeline';
import { runIdentity } from '../contracts/runClaim';
import type { RunnerSpec } from '../contracts/runner';
import type { PipelineSummary } from '../contracts/summary';
import { bestRow, expandGrid, gridActivityId } from './grid';
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
  // `maxConcurrentSteps` at once, with ids that name the point in the Web UI.
  const points = expandGrid(config.grid);
  progress.grid = { done: 0, total: points.length };
  const grid = await timed('grid', () =>
    Promise.all(
      points.map(async (point: AlsPoint, index: number) => {
        // Named after the point, so a result is only ever reused for the very same point.
        const activityId = gridActivityId(index, point);
        const { result } = await spark('als_point', activityId, { folds: split.result.cv, point, ...model(`grid-${index}`) }, `grid/${activityId}`);
        const row: GridRow = { index, point, rmse: result.mean.rmse, mae: result.mean.mae, rmseStd: result.std.rmse };
        progress.grid.done++;
        progress.best = bestRow(progress.best ? [progress.best, row] : [row]);
        return { row, result };
      }),
    ),
  );
  const rows = grid.map((g) => g.row);
  const best = bestRow(rows)!;
  upsertMemo({ bestPoint: best.point, bestCvRmse: best.rmse });

  // Final model, evaluation against the baselines, and analysis are independent of each other.
  const point = best.point;
  const [final, evaluation, analysis] = await timed('train-evaluate-analyse', () =>
    Promise.all([
      spark('train_final', 'train-final', { ratings: ratingsUri, point, model: layout.modelUri, ...model('final') }),
      spark('evaluate', 'evaluate', { folds: split.result.evaluation, movies: moviesUri, point, ranking: config.ranking, ...model('evaluate') }),
      spark('analysis', 'analysis', { ratings: ratingsUri, movies: moviesUri, output: layout.analysisUri }),
    ]),
  );

  const recommendations = await timed('recommend', () =>
    // Until the grid selects the ranking model (g12): implicit ALS at the point bench/models.md measured (1.74x most_popular).
    spark('recommend', 'recommend', {
      ranking: { family: 'implicit_als', point: { rank: 32, reg_param: 0.1, max_iter: 10, alpha: 1.0 } },
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
            point: best.point,
            metrics: evaluation.result.models.als,
            modelUri: final.result.modelUri,
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
      grid: grid.map((g) => g.result),
    },
    stages,
  };
  // The full document goes to S3 and the result is its compact summary (a few KB in the Web UI).
  // Runs recorded before this change returned the full document and replay without the write.
  const resultUri = layout.resultUri('pipeline');
  if (patched('result-document-in-s3')) await stagingActivities.writeResultDocument({ uri: resultUri, document: full });
  return summarise(full, resultUri);
}
