/**
 * Records the histories `test/replay.test.ts` replays, from small real runs on the running local
 * stack: `make record-histories` (after `make up`; `RECORD=EMR` or `RECORD=local` for one part). Rerun it after a workflow change
 * that alters the commands a run issues, and commit the files it writes:
 * - full-pipeline-local.json   every stage on the warm local engine, registered;
 * - register-false.json        the same with `register: false`;
 * - cancelled-by-signal.json   the `cancel` signal during the grid (its requestCancellation local activity);
 * - failed-run.json            a Spark job failing non-retryably (ml-100k's official folds on ml-latest-small);
 * - emr-transient.json         a transient EMR cluster (test/emr/emrTestServer.ts runs its steps on local Spark).
 * Run by jest (`--testMatch`), so it is type-checked and each run's outcome is asserted before its
 * history is written.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { workflowIdFor, type TrainingPipelineInput } from '../../src/contracts/pipeline';
import { cancelSignal, progressQuery, trainingPipeline } from '../../src/workflows';
import { EmrTestServer } from '../emr/emrTestServer';
import { stackSettings, temporalCli, uniquePrefix } from '../helpers/stack';
import { waitFor } from '../helpers/waitFor';

// Minutes on a quiet machine; a loaded one (load 25+ on 2 cores) took 15 min for the local runs and
// over 30 for the EMR one, whose eight steps each start a JVM.
jest.setTimeout(120 * 60_000);
const settings = stackSettings();
const prefix = uniquePrefix('histories');
const stamp = `${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
const dataDir = resolve(process.env.LENSFLOW_DATA_DIR ?? join(__dirname, '..', '..', '..', 'shared', 'data', 'movielens'));

// Tiny: two grid points of two iterations on ml-latest-small (100k ratings).
const input = (name: string, extra: Partial<TrainingPipelineInput> = {}): TrainingPipelineInput => ({
  dataset: 'ml-latest-small',
  source: { kind: 'local', dir: dataDir },
  bucket: settings.s3.bucket,
  prefix,
  runId: `history-${name}-${stamp}`,
  grid: { rank: [2, 4], regParam: [0.1], maxIter: [2] },
  split: { kind: 'random', testFraction: 0.2, cvFolds: 2, seed: 1 },
  maxConcurrentSteps: 2,
  ...extra,
});

/** Writes the run's history as the `temporal` CLI shows it, the format the replay test reads. */
function save(name: string, runId: string): void {
  const history = temporalCli(settings, ['workflow', 'show', '--workflow-id', workflowIdFor(runId), '--output', 'json']);
  writeFileSync(join(__dirname, `${name}.json`), history);
}

let client: Client;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }), namespace: settings.temporal.namespace });
});
afterAll(() => client.connection.close());

/** Starts a run of the stack's worker and returns how it ended: its summary or its failure. */
async function run(name: string, extra: Partial<TrainingPipelineInput> = {}, taskQueue = settings.temporal.taskQueue) {
  const args = input(name, extra);
  const handle = await client.workflow.start(trainingPipeline, { taskQueue, workflowId: workflowIdFor(args.runId!), args: [args] });
  return { handle, runId: args.runId!, outcome: handle.result().then((summary) => ({ summary }), (error: unknown) => ({ error })) };
}

test('the local branches: complete, register:false, cancelled by signal, failed', async () => {
  // Every searched family, tiny, so the family grid, the champion's training and the ranking model's choice replay too.
  const full = await run('full', { families: { bias_als: { rank: [2], max_iter: [2] }, implicit_als: { rank: [2], max_iter: [2] }, torch_ease: { l2: [200] }, torch_autorec: { hidden: [8], epochs: [5] } } });
  const unregistered = await run('register-false', { register: false });
  const failed = await run('failed', { split: { kind: 'official' } });
  const cancelled = await run('cancelled');
  // Cancel once a grid point runs, so the history holds the signal, its local activity and the
  // cancellation of running Spark jobs.
  await waitFor('the run to be cancelled to start a grid point', async () => {
    const pending = (await cancelled.handle.describe()).raw.pendingActivities ?? [];
    return pending.some((a) => a.activityId?.startsWith('grid-') && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED) || undefined;
  }, { timeoutMs: 10 * 60_000, intervalMs: 250, seen: () => cancelled.handle.query(progressQuery) });
  await cancelled.handle.signal(cancelSignal, 'recording the cancel-signal history');

  expect((await full.outcome) as { summary?: unknown }).toHaveProperty('summary.registry.decision');
  expect((await unregistered.outcome) as { summary?: unknown }).toMatchObject({ summary: { registry: null } });
  expect(((await failed.outcome) as { error?: unknown }).error).toBeInstanceOf(WorkflowFailedError);
  expect((((await cancelled.outcome) as { error?: WorkflowFailedError }).error)?.cause).toBeInstanceOf(CancelledFailure);
  save('full-pipeline-local', full.runId);
  save('register-false', unregistered.runId);
  save('failed-run', failed.runId);
  save('cancelled-by-signal', cancelled.runId);
});

test('a transient EMR cluster run (steps run one at a time: one Spark process at once)', async () => {
  const server = new EmrTestServer({ settings });
  const { endpoint, close } = await server.start();
  const taskQueue = `record-emr-${stamp}`;
  const worker = spawn('node', [join(__dirname, '..', '..', 'dist', 'workers', 'main.js')], {
    env: { ...process.env, LENSFLOW_TASK_QUEUE: taskQueue, LENSFLOW_EMR_ENDPOINT: endpoint, LENSFLOW_EMR_POLL_SECONDS: '1' },
    stdio: 'ignore',
  });
  try {
    const emr = await run(
      'emr',
      {
        grid: { rank: [2], regParam: [0.1], maxIter: [2] },
        maxConcurrentSteps: 1,
        register: false,
        runner: { kind: 'emr', transient: { logUri: `s3://${settings.s3.bucket}/${prefix}/emr-logs/`, instanceCount: 1 } },
      },
      taskQueue,
    );
    expect((await emr.outcome) as { summary?: unknown }).toHaveProperty('summary.best');
    save('emr-transient', emr.runId);
  } finally {
    worker.kill('SIGTERM');
    await close();
  }
});
