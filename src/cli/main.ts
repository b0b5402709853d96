#!/usr/bin/env node
/**
 * `lensflow`: thin commands that parse, validate, call Temporal or S3, and print.
 * Run `lensflow help` for the list; the README shows the plain `temporal` equivalents.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client, Connection, ScheduleOverlapPolicy, WorkflowFailedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import { createS3Client, getObjectText } from '../activities/s3Client';
import { readChampion, readRecommendations, readServedModel, readSimilarMovies } from '../activities/recommendationsStore';
import { listStagedVersions } from '../activities/stageDataset';
import { readResultDocument } from '../activities/resultDocument';
import { DataSource, DatasetName } from '../contracts/datasets';
import { TrainingPipelineInput, newRunId, runIdFromWorkflowId, workflowIdFor, type PipelineProgress } from '../contracts/pipeline';
import { RunnerSpec } from '../contracts/runner';
import { parseS3Uri } from '../contracts/s3';
import { PipelineSummary } from '../contracts/summary';
import { loadSettings, webUiLink, type Settings } from '../settings';
import { progressLine, renderSummary, rootCause } from './render';
import { runningJobs, sparkLine } from './sparkProgress';
import { cancelSignal, progressQuery, trainingPipeline } from '../workflows';

const USAGE = `usage: lensflow <command> [options]

  run [--dataset D] [--source auto|grouplens|local:<dir>|synthetic:<ratings>[:seed]] [--run-id ID] [--grid JSON] [--families JSON] [--split JSON]
      [--runner local|emr:<clusterId>|emr-transient:<spec.json>] [--max-concurrent N] [--no-register] [--no-wait] [--rerun] [--json]
                                start trainingPipeline; waits with a progress line, then prints a
                                summary (--json: the full result document) unless --no-wait; a run id
                                that has outputs from another input is refused, --rerun starts a
                                fresh attempt under it
  status <runId>                the run's status, stages finished and Web UI link
  progress <runId>              the running stage, grid points done/total, best point so far, and
                                the running Spark jobs' stages and tasks done (\`spark\`)
  cancel <runId> [--reason R]   stop the run (signal); --hard uses Temporal's workflow cancellation
  result <runId> [--json]       wait for the run, print its summary (--json: the full document)
  report <runId> [--out FILE]   save the run's HTML report locally and print its path
  recommend <userId> [--dataset D] [--run-id ID]
                                top movies for a user from the champion (or the given run), with
                                the model that ranked them and why each ("because you rated X")
  similar <movieId> [--dataset D] [--run-id ID]
                                the movies most similar to a movie by the same model
  schedule create --cron EXPR [--id ID] [run options]   nightly retrains (overlap policy: skip)
  schedule list | schedule delete <id>
  datasets [--dataset D]        the staged versions of each dataset (content SHA-256, files, when)`;

function parseSource(text: string): DataSource {
  if (text === 'auto' || text === 'grouplens') return { kind: text };
  if (text.startsWith('local:') && text.length > 6) return { kind: 'local', dir: text.slice(6) };
  const synthetic = /^synthetic:(\d+(?:\.\d+)?)([kKmM]?)(?::(\d+))?$/.exec(text);
  if (synthetic) {
    const ratings = Math.round(Number(synthetic[1]) * { '': 1, k: 1e3, m: 1e6 }[synthetic[2]!.toLowerCase() as '' | 'k' | 'm']);
    return DataSource.parse({ kind: 'synthetic', ratings, seed: synthetic[3] === undefined ? undefined : Number(synthetic[3]) });
  }
  throw new Error(`--source must be auto, grouplens, local:<dir> or synthetic:<ratings>[:seed] (e.g. synthetic:25M:7), not "${text}"`);
}

function parseRunner(text: string): RunnerSpec {
  if (text === 'local') return { kind: 'local' };
  if (text.startsWith('emr:')) return RunnerSpec.parse({ kind: 'emr', clusterId: text.slice(4) });
  // A transient cluster's spec (README: On Amazon EMR) from a JSON file.
  if (text.startsWith('emr-transient:')) return RunnerSpec.parse({ kind: 'emr', transient: JSON.parse(readFileSync(text.slice(14), 'utf8')) });
  throw new Error(`--runner must be local, emr:<clusterId> or emr-transient:<spec.json>, not "${text}"`);
}

function parseJson(flag: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${flag} must be JSON, e.g. --grid '{"rank":[8,12],"regParam":[0.05,0.1]}'`);
  }
}

const RUN_OPTIONS = {
  dataset: { type: 'string', default: 'ml-latest-small' },
  source: { type: 'string', default: 'auto' },
  'run-id': { type: 'string' },
  grid: { type: 'string' },
  families: { type: 'string' },
  split: { type: 'string' },
  runner: { type: 'string', default: 'local' },
  'max-concurrent': { type: 'string' },
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  'no-register': { type: 'boolean', default: false },
  rerun: { type: 'boolean', default: false },
} as const;

type RunValues = { [K in keyof typeof RUN_OPTIONS]?: (typeof RUN_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** The pipeline input from `run`/`schedule create` options, validated. `runId: null` leaves it to the workflow. */
function pipelineInput(v: RunValues, settings: Settings, runId: string | null) {
  const dataset = DatasetName.parse(v.dataset);
  return TrainingPipelineInput.parse({
    dataset,
    source: parseSource(v.source ?? 'auto'),
    bucket: v.bucket ?? settings.s3.bucket,
    prefix: v.prefix ?? settings.s3.prefix,
    runId: runId === null ? undefined : (v['run-id'] ?? runId),
    grid: parseJson('--grid', v.grid),
    families: parseJson('--families', v.families),
    split: parseJson('--split', v.split),
    runner: parseRunner(v.runner ?? 'local'),
    maxConcurrentSteps: v['max-concurrent'] === undefined ? undefined : Number(v['max-concurrent']),
    register: !v['no-register'],
    rerun: v.rerun,
  });
}

async function connect(settings: Settings): Promise<Client> {
  const connection = await Connection.connect({ address: settings.temporal.address });
  return new Client({ connection, namespace: settings.temporal.namespace });
}

function needRunId(args: string[]): string {
  const runId = args[0];
  if (!runId || runId.startsWith('-')) throw new Error('give the run id, e.g. `lensflow status ml-latest-small-20261124-1a2b3c`');
  return runId;
}

/** Waits for a run with a progress line on stderr, then prints its summary (or full document) or its failure's root cause. */
async function awaitRun(handle: WorkflowHandle<typeof trainingPipeline>, settings: Settings, opts: { json: boolean; startedAt: number }): Promise<number> {
  const stop = watchProgress(handle, opts.startedAt);
  const webUi = webUiLink(settings, handle.workflowId);
  let summary: PipelineSummary;
  try {
    summary = PipelineSummary.parse(await handle.result());
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = rootCause(err);
    console.error(`run ${runIdFromWorkflowId(handle.workflowId)} did not complete: ${cause.message}`);
    console.error(`  root cause: ${cause.type}${cause.activity ? ` in activity ${cause.activity}` : ''}`);
    console.error(`Web UI: ${webUi}`);
    return 1;
  } finally {
    stop();
  }
  if (opts.json) console.log(JSON.stringify(await readResultDocument(createS3Client(settings.s3), summary.resultUri), null, 2));
  else console.log(renderSummary(summary, { webUi, report: `${summary.outputs.report} (lensflow report ${summary.runId})` }));
  if (opts.json) console.error(`Web UI: ${webUi}`);
  return 0;
}

/**
 * Polls the `progress` query every 2 s: on a terminal one line redrawn in place, elsewhere a log
 * line whenever the stage or the grid count changes. Returns the function that stops it.
 */
function watchProgress(handle: WorkflowHandle, startedAt: number): () => void {
  const tty = process.stderr.isTTY === true;
  let last = '';
  let drawn = false;
  let stopped = false;
  const tick = async () => {
    const p = await handle.query(progressQuery).catch(() => undefined); // no worker yet, or the run just closed
    const spark = sparkLine(await runningJobs(handle).catch(() => []));
    if (!p || stopped) return; // an answer that arrives after the run ended draws nothing
    const key = `${p.stage} ${p.grid.done}/${p.grid.total}`;
    if (tty) {
      process.stderr.write(`\r\x1b[2K${progressLine(p, Date.now() - startedAt)}${spark}`);
      drawn = true;
    } else if (key !== last) console.error(`${progressLine(p, Date.now() - startedAt)}${spark}`);
    last = key;
  };
  const timer = setInterval(() => void tick(), 2000);
  void tick();
  return () => {
    stopped = true;
    clearInterval(timer);
    if (drawn) process.stderr.write('\n');
  };
}

/** The run a lookup reads: `--run-id`, else the dataset's champion. */
async function lookupRun(args: string[], settings: Settings) {
  const { values } = parseArgs({ args: args.slice(1), options: { dataset: { type: 'string', default: 'ml-latest-small' }, 'run-id': { type: 'string' } } });
  const s3 = createS3Client(settings.s3);
  const { bucket, prefix } = settings.s3;
  const runId = values['run-id'] ?? (await readChampion(s3, bucket, prefix, DatasetName.parse(values.dataset)))?.runId;
  if (!runId) throw new Error(`no champion for ${values.dataset} yet: run the pipeline first, or name a run with --run-id`);
  return { s3, bucket, prefix, runId };
}

const commands: Record<string, (args: string[], settings: Settings) => Promise<number>> = {
  async run(args, settings) {
    const { values } = parseArgs({ args, options: { ...RUN_OPTIONS, 'no-wait': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
    const input = pipelineInput(values, settings, newRunId(values.dataset!, new Date(), randomBytes(3).toString('hex')));
    const workflowId = workflowIdFor(input.runId!);
    const client = await connect(settings);
    const handle = await client.workflow.start(trainingPipeline, {
      taskQueue: settings.temporal.taskQueue,
      workflowId,
      args: [input],
      memo: { dataset: input.dataset },
      // A closed run's id may start again: the run's claim then resumes it (same input), refuses
      // it (another input) or, with --rerun, starts a fresh attempt. A running one is never doubled.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    });
    console.error(`started ${workflowId}\nWeb UI: ${webUiLink(settings, workflowId)}`);
    if (values['no-wait']) return 0;
    return awaitRun(handle, settings, { json: values.json!, startedAt: Date.now() });
  },

  async status(args, settings) {
    const runId = needRunId(args);
    const client = await connect(settings);
    const d = await client.workflow.getHandle(workflowIdFor(runId)).describe();
    console.log(
      JSON.stringify(
        {
          runId,
          status: d.status.name,
          started: d.startTime,
          closed: d.closeTime ?? null,
          memo: d.memo ?? {},
          webUi: webUiLink(settings, d.workflowId),
        },
        null,
        2,
      ),
    );
    return 0;
  },

  async progress(args, settings) {
    const client = await connect(settings);
    const handle = client.workflow.getHandle(workflowIdFor(needRunId(args)));
    const p: PipelineProgress = await handle.query(progressQuery);
    // Beside the workflow's view, Spark's: the running jobs' stages and tasks from their heartbeats.
    console.log(JSON.stringify({ ...p, spark: await runningJobs(handle) }, null, 2));
    return 0;
  },

  async cancel(args, settings) {
    const runId = needRunId(args);
    const { values } = parseArgs({ args: args.slice(1), options: { reason: { type: 'string' }, hard: { type: 'boolean', default: false } } });
    const handle = (await connect(settings)).workflow.getHandle(workflowIdFor(runId));
    if (values.hard) await handle.cancel();
    else await handle.signal(cancelSignal, values.reason ?? 'cancelled from the lensflow CLI');
    console.error(`asked ${handle.workflowId} to stop; \`lensflow status ${runId}\` shows when it has`);
    return 0;
  },

  async result(args, settings) {
    const runId = needRunId(args);
    const { values } = parseArgs({ args: args.slice(1), options: { json: { type: 'boolean', default: false } } });
    const handle = (await connect(settings)).workflow.getHandle<typeof trainingPipeline>(workflowIdFor(runId));
    return awaitRun(handle, settings, { json: values.json!, startedAt: (await handle.describe()).startTime.getTime() });
  },

  async report(args, settings) {
    const runId = needRunId(args);
    const { values } = parseArgs({ args: args.slice(1), options: { out: { type: 'string' } } });
    const summary = PipelineSummary.parse(await (await connect(settings)).workflow.getHandle(workflowIdFor(runId)).result());
    const { bucket, key } = parseS3Uri(summary.outputs.report!);
    const got = await getObjectText(createS3Client(settings.s3), bucket, key);
    if (!got) throw new Error(`the report ${summary.outputs.report} is not in S3`);
    const out = resolve(values.out ?? `lensflow-report-${runId}.html`);
    writeFileSync(out, got.text);
    console.log(out);
    return 0;
  },

  async recommend(args, settings) {
    const userId = Number(args[0]);
    if (!Number.isInteger(userId) || userId < 0) throw new Error('give a numeric user id, e.g. `lensflow recommend 42`');
    const { s3, bucket, prefix, runId } = await lookupRun(args, settings);
    const [model, recs] = await Promise.all([readServedModel(s3, bucket, prefix, runId), readRecommendations(s3, bucket, prefix, runId, userId)]);
    const recommendations = recs.map((r, i) => ({ rank: i + 1, ...r, explanation: r.because ? `because you rated ${r.because.title ?? `movie ${r.because.movieId}`}` : null }));
    console.log(JSON.stringify({ runId, userId, model, recommendations }, null, 2));
    return 0;
  },

  async similar(args, settings) {
    const movieId = Number(args[0]);
    if (!Number.isInteger(movieId) || movieId < 0) throw new Error('give a numeric movie id, e.g. `lensflow similar 1`');
    const { s3, bucket, prefix, runId } = await lookupRun(args, settings);
    const [model, similar] = await Promise.all([readServedModel(s3, bucket, prefix, runId), readSimilarMovies(s3, bucket, prefix, runId, movieId)]);
    console.log(JSON.stringify({ runId, movieId, model, similar: similar.map((m, i) => ({ rank: i + 1, ...m })) }, null, 2));
    return 0;
  },

  async datasets(args, settings) {
    const { values } = parseArgs({ args, options: { dataset: { type: 'string' } } });
    const s3 = createS3Client(settings.s3);
    for (const dataset of values.dataset ? [DatasetName.parse(values.dataset)] : DatasetName.options) {
      for (const v of await listStagedVersions(s3, settings.s3.bucket, settings.s3.prefix, dataset)) {
        console.log(JSON.stringify({ dataset, version: v.version, stagedAt: v.stagedAt, rawUri: v.rawUri, bytes: v.files.reduce((n, f) => n + f.bytes, 0) }));
      }
    }
    return 0;
  },

  async schedule(args, settings) {
    const [sub, ...rest] = args;
    const client = await connect(settings);
    if (sub === 'create') {
      const { values } = parseArgs({ args: rest, options: { ...RUN_OPTIONS, cron: { type: 'string' }, id: { type: 'string' } } });
      if (!values.cron) throw new Error("give --cron, e.g. --cron '0 2 * * *' for 02:00 UTC every night");
      const input = pipelineInput(values, settings, null); // each scheduled run derives its run id
      const scheduleId = values.id ?? `lensflow-nightly-${input.dataset}`;
      await client.schedule.create({
        scheduleId,
        spec: { cronExpressions: [values.cron] },
        action: {
          type: 'startWorkflow',
          workflowType: trainingPipeline,
          workflowId: scheduleId,
          taskQueue: settings.temporal.taskQueue,
          args: [input],
          memo: { dataset: input.dataset, schedule: scheduleId },
        },
        // The server appends each action's time to the workflow id, so every scheduled run has its
        // own run id (no id reuse to decide); Skip keeps to one run at a time.
        policies: { overlap: ScheduleOverlapPolicy.SKIP },
      });
      console.log(JSON.stringify({ scheduleId, cron: values.cron, overlap: 'SKIP' }));
      return 0;
    }
    if (sub === 'list') {
      for await (const s of client.schedule.list()) console.log(JSON.stringify({ scheduleId: s.scheduleId, spec: s.spec, next: s.info.nextActionTimes[0] }));
      return 0;
    }
    if (sub === 'delete' && rest[0]) {
      await client.schedule.getHandle(rest[0]).delete();
      console.error(`deleted schedule ${rest[0]}`);
      return 0;
    }
    throw new Error('usage: lensflow schedule create --cron EXPR [--id ID] | schedule list | schedule delete <id>');
  },
};

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  const handler = command ? commands[command] : undefined;
  if (!handler) {
    console.error(USAGE);
    return command === 'help' || command === '--help' ? 0 : 2;
  }
  return handler(rest, loadSettings());
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`lensflow: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
