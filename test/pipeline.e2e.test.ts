/**
 * End to end on the local stack with real Spark (the warm engine of `make up`): the whole pipeline
 * on ml-latest-small with two ALS points and one point of each other family at concurrency 2, and
 * cancellation during the grid search (a SIGKILLed engine: sparkEngine.test.ts, and
 * pipeline.emr.e2e.test.ts against the EMR run). The two cancelled runs go beside the full run:
 * they are independent of it, the engine's FAIR pools share the cores between them, and a cancel
 * that stops only its own run's Spark jobs while another run's keep going is the stronger check.
 * Results are checked with independent tools: the `temporal` CLI, boto3 and pyarrow.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { TrainingPipelineResult } from '../src/contracts/pipeline';
import { progressQuery } from '../src/workflows';
import { cliPath, runCli } from './helpers/cli';
import { SMALL_RELEASE_CLI } from './helpers/smallRelease';
import { boto3Json, stackSettings, temporalCli, uniquePrefix } from './helpers/stack';
import { waitFor } from './helpers/waitFor';

// A few minutes on a quiet 2-core machine for the three runs side by side; over 25 minutes beside a
// load average of 30 (the full run's CLI was stopped at 25 in one such run). The deadline is
// generous: the suite's speed is bench's.
jest.setTimeout(45 * 60_000);
const settings = stackSettings();
const bucket = settings.s3.bucket;

// Two ALS points (a choice to make) and one point of each other model family at concurrency 2;
// small ranks and iteration counts keep a run to a few minutes on 2 cores.
const GRID = { rank: [4, 8], regParam: [0.1], maxIter: [5] };
const FAMILIES = {
  bias_als: { rank: [4], reg_param: [0.1], max_iter: [5] },
  implicit_als: { rank: [4], max_iter: [5], alpha: [5] },
  torch_ease: { l2: [200] },
};
const SPLIT = { kind: 'random' as const, testFraction: 0.2, cvFolds: 2, seed: 7 };
const prefix = uniquePrefix('e2e');
const runOptions = ['--grid', JSON.stringify(GRID), '--families', JSON.stringify(FAMILIES), '--split', JSON.stringify(SPLIT), '--max-concurrent', '2', '--prefix', prefix];

/** Two ways to cancel a run: the workflow's own signal through the CLI, and Temporal's cancel. */
const CANCELS: Array<[string, (runId: string) => number | null]> = [
  ['the cancel signal (lensflow cancel)', (runId) => spawnSync('node', [cliPath, 'cancel', runId], { encoding: 'utf8' }).status],
  ['temporal workflow cancel', (runId) => (temporalCli(settings, ['workflow', 'cancel', '--workflow-id', `lensflow-${runId}`]), 0)],
];

let client: Client;
/** The cancel scenarios, started beside the full run; each test awaits its own. */
let cancelled: Array<Promise<void>>;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }) });
  cancelled = CANCELS.map(([, cancel]) => {
    const scenario = cancelDuringGrid(cancel);
    scenario.catch(() => undefined); // not unhandled while the full run's test runs; its test awaits it
    return scenario;
  });
});
afterAll(async () => {
  await Promise.allSettled(cancelled);
  await client.connection.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const newRunId = (label: string) => `ml-latest-small-${label}-${randomBytes(3).toString('hex')}`;

/** Waits until the run's progress satisfies `ok` (polling the `progress` query). */
async function waitForProgress(workflowId: string, ok: (p: Awaited<ReturnType<typeof queryProgress>>) => boolean, seconds = 300) {
  for (let i = 0; i < seconds * 2; i++) {
    const p = await queryProgress(workflowId).catch(() => undefined);
    if (p && ok(p)) return p;
    await sleep(500);
  }
  throw new Error(`run ${workflowId} did not reach the expected progress in ${seconds}s`);
}
const queryProgress = (workflowId: string) => client.workflow.getHandle(workflowId).query(progressQuery);

const enginePid = () => Number(readFileSync(join(settings.stateDir, 'run', 'spark-worker.pid'), 'utf8'));

/** Ids of the run's grid activities whose heartbeats report Spark tasks (their Spark jobs run). */
async function runningGridJobs(workflowId: string): Promise<string[]> {
  const pending = (await client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
  return pending
    .filter((a) => a.activityId?.startsWith('grid-'))
    .filter((a) => {
      const data = a.heartbeatDetails?.payloads?.[0]?.data;
      return data && (JSON.parse(Buffer.from(data).toString('utf8')) as { tasks?: { total: number } }).tasks?.total;
    })
    .map((a) => a.activityId!);
}

/** What the run left in S3, read with boto3 and pyarrow. */
function s3View(runKey: string) {
  return boto3Json<{
    success: { committer: string; filenames: string[] };
    ratingsRows: number;
    grid: Array<{ point: { rank: number }; mean: { rmse: number } }>;
    families: Array<{ family: string; objective: string; mean: Record<string, number> }>;
    evaluation: { models: TrainingPipelineResult['test'] };
    reportBytes: number;
    plots: string[];
  }>(
    settings,
    `
import io, pyarrow.parquet as pq
b, run = '${bucket}', '${runKey}'
get = lambda k: s3.get_object(Bucket=b, Key=k)['Body'].read()
keys = lambda p: [o['Key'] for o in s3.list_objects_v2(Bucket=b, Prefix=p).get('Contents', [])]
parts = [k for k in keys(run + '/processed/ratings/') if k.endswith('.parquet')]
print(json.dumps({
  'success': json.loads(get(run + '/processed/ratings/_SUCCESS')),
  'ratingsRows': sum(pq.read_table(io.BytesIO(get(k))).num_rows for k in parts),
  'grid': [json.loads(get(k)) for k in sorted(keys(run + '/results/grid/'))],
  'families': [json.loads(get(k)) for k in sorted(keys(run + '/results/families/'))],
  'evaluation': json.loads(get(run + '/results/evaluate.json')),
  'reportBytes': len(get(run + '/report/report.html')),
  'plots': sorted(k.rsplit('/', 1)[1] for k in keys(run + '/report/') if k.endswith('.png')),
}))`,
  );
}

test('lensflow run: the whole pipeline completes, and its result matches what is in S3', async () => {
  const runId = newRunId('full');
  // Not spawnSync: the cancel scenarios beside it need the event loop.
  const run = await runCli(['run', '--run-id', runId, '--json', ...runOptions], { timeoutMs: 40 * 60_000 });
  expect(run.stderr).toContain(`Web UI: ${settings.temporal.webUiUrl}/namespaces/default/workflows/lensflow-${runId}`);
  expect({ status: run.status, stderr: run.stderr }).toMatchObject({ status: 0 });
  const uninterrupted = JSON.parse(run.stdout) as TrainingPipelineResult;

  const described = JSON.parse(temporalCli(settings, ['workflow', 'describe', '--workflow-id', `lensflow-${runId}`, '--output', 'json']));
  expect(described.workflowExecutionInfo.status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');

  expect(uninterrupted.clean.counts.ratings).toEqual({ raw: 100_836, clean: 100_836, quarantined: {} });
  expect(uninterrupted.grid).toHaveLength(GRID.rank.length * GRID.regParam.length * GRID.maxIter.length);
  // Each family was searched and selected by its own objective; the best rating model (ALS
  // included) is trained on all ratings when it is not ALS, and registered.
  const families = uninterrupted.families!;
  expect(Object.fromEntries(Object.entries(families.best).map(([f, r]) => [f, r!.objective]))).toEqual({ bias_als: 'rmse', implicit_als: 'ndcg_at_k', torch_ease: 'ndcg_at_k' });
  const rating = families.rating.family;
  expect(['als', 'bias_als']).toContain(rating);
  expect(['implicit_als', 'torch_ease']).toContain(families.ranking!.family);
  const champion = rating === 'als' ? [] : ['train-champion'];
  expect(uninterrupted.stages.map((s) => s.stage)).toEqual(['stage', 'clean', 'split', 'grid', 'train-evaluate-analyse', ...champion, 'recommend', 'report', 'register']);
  // Every family and baseline is judged on the same test set; the rating models beat the global mean.
  const test = uninterrupted.test;
  expect(Object.keys(test).sort()).toEqual(['als', 'bias_als', 'global_mean', 'implicit_als', 'most_popular', 'torch_ease', 'user_item_bias']);
  expect(test.als.rmse!).toBeLessThan(test.global_mean.rmse!);
  expect(test.bias_als!.rmse!).toBeLessThan(test.global_mean.rmse!);
  expect(test.torch_ease!.rmse).toBeNull();
  expect(test.implicit_als!.ndcg_at_k!).toBeGreaterThan(0);
  expect(uninterrupted.registry?.decision).toBe('promoted');
  expect(uninterrupted.registry!.challenger).toMatchObject({ point: families.rating.point, metrics: test[rating] });

  const s3 = s3View(`${prefix}/runs/${runId}`);
  expect(s3.success.committer).toBe('magic');
  expect(s3.ratingsRows).toBe(100_836);
  expect(s3.grid.map((g) => g.mean.rmse)).toEqual(uninterrupted.grid.map((g) => g.rmse));
  expect(s3.families.map((f) => [f.family, f.mean[f.objective]])).toEqual(families.grid.map((r) => [r.family, r.score]));
  expect(s3.evaluation.models).toEqual(uninterrupted.test);
  expect(Math.min(...uninterrupted.grid.map((g) => g.rmse))).toBe(uninterrupted.best.rmse);
  expect(s3.reportBytes).toBeGreaterThan(10_000);
  expect(s3.plots).toEqual(expect.arrayContaining(['cv_heatmap.png', 'model_comparison.png', 'rating_distribution.png']));

  // The champion's recommendations, looked up the way a user would.
  const recs = spawnSync('node', [cliPath, 'recommend', '1', '--run-id', runId], { encoding: 'utf8', env: { ...process.env, LENSFLOW_PREFIX: prefix } });
  expect(recs.status).toBe(0);
  const lookup = JSON.parse(recs.stdout) as { model: { family: string; scoreLabel: string }; recommendations: Array<{ movieId: number; title: string; explanation: string }> };
  expect(lookup.recommendations).toHaveLength(10);
  expect(lookup.recommendations[0]!.title).toEqual(expect.any(String));
  // Served by a ranking model, labelled as its scores, each movie explained by one the user rated.
  // The ranking model the grid chose by CV NDCG@k is the one serving.
  expect(lookup.model.family).toBe(families.ranking!.family);
  expect(lookup.model.scoreLabel).not.toBe('predicted rating');
  for (const r of lookup.recommendations) expect(r.explanation).toMatch(/^because you rated ./);
  const similar = spawnSync('node', [cliPath, 'similar', '1', '--run-id', runId], { encoding: 'utf8', env: { ...process.env, LENSFLOW_PREFIX: prefix } });
  expect(similar.status).toBe(0);
  expect((JSON.parse(similar.stdout) as { similar: Array<{ title: string }> }).similar).toHaveLength(10);
});

/**
 * Starts a run, waits for its grid search to run Spark tasks, cancels it with `cancel`, and checks
 * that it ends CANCELLED within 10 s on the same engine, with nothing promoted.
 */
async function cancelDuringGrid(cancel: (runId: string) => number | null): Promise<void> {
  const runId = newRunId('cancel');
  const workflowId = `lensflow-${runId}`;
  const pid = enginePid();
  // The small generated release: cancelling is what is tested, and it needs only a grid job running.
  const started = await runCli(['run', '--run-id', runId, '--no-wait', ...SMALL_RELEASE_CLI, ...runOptions]);
  expect(started.status).toBe(0);
  // Beside the full run, the grid may wait for the engine's slots: the deadlines are generous.
  await waitForProgress(workflowId, (p) => p.stage === 'grid', 10 * 60);
  await waitFor(`a grid job of ${runId} to run its Spark tasks`, async () => ((await runningGridJobs(workflowId)).length > 0) || undefined, { timeoutMs: 10 * 60_000, intervalMs: 250 });

  expect(cancel(runId)).toBe(0);
  // The workflow waits for each cancelled activity to end, and an activity ends only once the
  // Spark jobs of its job group have returned: CANCELLED within 10 s means they stopped by then.
  const t0 = Date.now();
  let final = await client.workflow.getHandle(workflowId).describe();
  while (final.status.name === 'RUNNING' && Date.now() - t0 < 10_000) {
    await sleep(200);
    final = await client.workflow.getHandle(workflowId).describe();
  }
  expect(final.status.name).toBe('CANCELLED');
  expect(enginePid()).toBe(pid);
  expect(final.memo).toMatchObject({ finishedStages: ['stage', 'clean', 'split'] });
  const decisions = boto3Json<string[]>(settings, `print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='${bucket}', Prefix='${prefix}/registry/').get('Contents', []) if '${runId}' in o['Key']]))`);
  expect(decisions).toEqual([]);
}

test.each(CANCELS.map(([how], index) => [how, index] as const))(
  'cancelling during the grid search by %s stops the running Spark jobs within 10 s, the engine lives on, nothing is promoted, and the run shows as cancelled',
  async (_how, index) => {
    await cancelled[index];
  },
);
