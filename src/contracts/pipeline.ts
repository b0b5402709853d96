import { z } from 'zod';
import { DatasetName, DataSource } from './datasets';
import { AlsGrid, AlsPoint, FamilyGrids, FamilyPoint, ModelMetrics, RankingSettings, SplitProtocol } from './experiment';
import { FamilyName } from './models';
import { AlsPointResult, ModelPointResult, AnalysisResult, CleanResult, EvaluateResult, RecommendResult, ReportResult, TrainFinalResult } from './jobResults';
import { RegistryDecision } from './registry';
import { RunnerSpec } from './runner';
import { BucketName, KeyPrefix, S3Uri } from './s3';
import { StageDatasetResult } from './stage';

/** Run ids name S3 folders and workflow ids: `<dataset>-<yyyymmdd>-<suffix>`. */
export const RunId = z.string().regex(/^[a-z0-9][a-z0-9._-]{2,100}$/, 'use 3–101 lowercase letters, digits, dots, dashes, underscores');

export const TrainingPipelineInput = z
  .object({
    dataset: DatasetName.default('ml-latest-small'),
    source: DataSource.default({ kind: 'auto' }),
    bucket: BucketName,
    prefix: KeyPrefix,
    /** Defaults to one derived from the workflow id (what a Schedule's runs need). */
    runId: RunId.optional(),
    /** Plain ALS's grid (Spark's parameter names); its best point is trained, served and shown as `als`. */
    grid: AlsGrid.default(AlsGrid.parse({})),
    /**
     * The other model families to search, each with its own grid (`FamilyGrids`) and selected by
     * its own objective, then evaluated beside ALS and the baselines. Absent: ALS only.
     */
    families: FamilyGrids.refine((g) => !('als' in g), { message: 'plain ALS is searched by `grid` (rank, regParam, maxIter); leave als out of `families`' }).optional(),
    split: SplitProtocol.default(SplitProtocol.parse({ kind: 'random' })),
    ranking: RankingSettings.default(RankingSettings.parse({})),
    /** How many recommendations per user the final model writes. */
    recommendations: z.number().int().min(1).max(100).default(10),
    seed: z.number().int().default(42),
    runner: RunnerSpec.default({ kind: 'local' }),
    /** Spark steps running at once, in the grid search and after it. */
    maxConcurrentSteps: z.number().int().min(1).max(64).default(2),
    /** Compare with the champion in the registry and promote when better. */
    register: z.boolean().default(true),
    /**
     * A run id whose outputs came from another input is refused; with `rerun` the run starts a
     * fresh attempt, `<runId>.attempt-<n>`, instead of resuming or being refused.
     */
    rerun: z.boolean().default(false),
  })
  .strict();
export type TrainingPipelineInput = z.input<typeof TrainingPipelineInput>;
export type TrainingPipelineConfig = z.output<typeof TrainingPipelineInput>;

export const StageTiming = z.object({ stage: z.string(), seconds: z.number().nonnegative(), reused: z.boolean() });
export type StageTiming = z.infer<typeof StageTiming>;

/** One row of the grid-search table: the point and its mean CV scores. */
export const GridRow = z.object({
  index: z.number().int(),
  point: AlsPoint,
  rmse: z.number(),
  mae: z.number(),
  rmseStd: z.number(),
  /** How many CV folds the means are over: all of them, unless successive halving dropped the point earlier. */
  folds: z.number().int().min(1).optional(),
});
export type GridRow = z.infer<typeof GridRow>;

/** One searched family's grid point: its mean CV scores and the objective it is judged by. */
export const FamilyRow = z.object({
  family: FamilyName,
  index: z.number().int(),
  point: FamilyPoint,
  objective: z.enum(['rmse', 'ndcg_at_k']),
  /** Mean CV value of the objective. */
  score: z.number(),
  scoreStd: z.number(),
});
export type FamilyRow = z.infer<typeof FamilyRow>;

/** A model chosen by the run: plain ALS (an `AlsPoint`) or a family at its `FamilyPoint`. */
export const ChosenModel = z.object({ family: FamilyName, point: z.union([AlsPoint, FamilyPoint]), cv: z.number() });
export type ChosenModel = z.infer<typeof ChosenModel>;

export const FamiliesOutcome = z.object({
  /** Every searched point of every family, in grid order per family. */
  grid: z.array(FamilyRow),
  /** Each family's best point by its own objective. */
  best: z.partialRecord(FamilyName, FamilyRow),
  /** The best rating model by CV RMSE (ALS included): the one registered. */
  rating: ChosenModel,
  /** The best ranking model by CV NDCG@k: what `recommend` serves (null when no ranking family was searched). */
  ranking: ChosenModel.nullable(),
  details: z.array(ModelPointResult),
});
export type FamiliesOutcome = z.infer<typeof FamiliesOutcome>;

export const TrainingPipelineResult = z.object({
  runId: RunId,
  dataset: DatasetName,
  runUri: S3Uri,
  best: GridRow,
  grid: z.array(GridRow),
  test: z.object({ als: ModelMetrics, global_mean: ModelMetrics, user_item_bias: ModelMetrics, most_popular: ModelMetrics }).catchall(ModelMetrics),
  /** The per-family search, when `families` was given. */
  families: FamiliesOutcome.optional(),
  outputs: z.object({
    processed: S3Uri,
    model: z.string(),
    recommendations: z.string(),
    analysis: z.string(),
    report: z.string(),
  }),
  registry: RegistryDecision.nullable(),
  staged: StageDatasetResult,
  clean: CleanResult,
  details: z.object({
    evaluation: EvaluateResult,
    final: TrainFinalResult,
    analysis: AnalysisResult,
    recommendations: RecommendResult,
    report: ReportResult,
    grid: z.array(AlsPointResult),
  }),
  stages: z.array(StageTiming),
});
export type TrainingPipelineResult = z.infer<typeof TrainingPipelineResult>;

/** What the `progress` query returns. */
export interface PipelineProgress {
  runId: string;
  stage: string;
  stagesDone: string[];
  grid: { done: number; total: number };
  best: GridRow | null;
  cancelRequested: string | null;
}

/**
 * Where a run lives in its bucket and where a job's result goes in it, the part of the layout the
 * Python worker also writes to (`run-layout.json`, read by `worker.result_uri_of`).
 */
export const RUN_LAYOUT = {
  run: '{prefix}/runs/{runId}/',
  result: 'results/{resultName}.json',
  /** Result names `<gridResults>/<activity id>` (ALS's grid) and `<familyResults>/<activity id>` (the families'). */
  gridResults: 'grid',
  familyResults: 'families',
  /** Folders of a run that the report and the notebook read from a local copy too. */
  analysis: 'analysis/',
  report: 'report/',
} as const;

/** A `RUN_LAYOUT` template with its `{name}` fields filled in (Python's `str.format` reads the same). */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => values[name]!);
}

/** S3 layout of one run, derived from the input in one place. */
export function runLayout(bucket: string, prefix: string, runId: string) {
  const runUri = `s3://${bucket}/${fill(RUN_LAYOUT.run, { prefix, runId })}`;
  const resultUri = (job: string) => `${runUri}${fill(RUN_LAYOUT.result, { resultName: job })}`;
  /** The folder that results named `<folder>/<id>` go to (the grid's, the families'). */
  const resultsFolderUri = (folder: string) => resultUri(`${folder}/-`).replace(/[^/]*$/, '');
  return {
    runUri,
    /** The input the run id was claimed for (`claimRunId`), written before any stage output. */
    inputUri: `${runUri}input.json`,
    processedUri: `${runUri}processed/`,
    foldsUri: `${runUri}folds/`,
    modelUri: `${runUri}model/`,
    analysisUri: `${runUri}${RUN_LAYOUT.analysis}`,
    recommendationsUri: `${runUri}recommendations/`,
    reportUri: `${runUri}${RUN_LAYOUT.report}`,
    checkpointUri: (name: string) => `${runUri}checkpoints/${name}/`,
    /** One `als_point` result per grid point (per point and fold under successive halving): `results/grid/<activity id>.json`. */
    gridResultsUri: resultsFolderUri(RUN_LAYOUT.gridResults),
    /** One `model_point` result per family point: `results/families/<activity id>.json` (the id names the family). */
    familyResultsUri: resultsFolderUri(RUN_LAYOUT.familyResults),
    resultUri,
  };
}

/** The Temporal workflow id of a run: `lensflow-<runId>`. */
export function workflowIdFor(runId: string): string {
  return `lensflow-${runId}`;
}

/** A fresh run id, `<dataset>-<yyyymmdd>-<suffix>`, for callers outside workflow code. */
export function newRunId(dataset: string, now: Date, suffix: string): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  return `${dataset}-${day}-${suffix}`;
}

/** A run id derived from a workflow id (e.g. a scheduled run's `lensflow-nightly-…-2026-11-25T02:00:00Z`). */
export function runIdFromWorkflowId(workflowId: string): string {
  return workflowId.replace(/^lensflow-/, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 100);
}
