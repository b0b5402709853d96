#!/usr/bin/env node
/**
 * `lensflow` command line: thin commands that parse, validate, call the Temporal client and print.
 *
 *   lensflow run [--dataset ml-latest-small] [--source auto|grouplens|local:<dir>] [--run-id ID] [--no-wait]
 *   lensflow result <runId>
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { DataSource } from '../contracts/datasets';
import { TrainingPipelineInput, newRunId, workflowIdFor } from '../contracts/pipeline';
import { loadSettings, webUiLink, type Settings } from '../settings';
import { trainingPipeline } from '../workflows';

function parseSource(text: string): DataSource {
  if (text === 'auto' || text === 'grouplens') return { kind: text };
  if (text.startsWith('local:') && text.length > 6) return { kind: 'local', dir: text.slice(6) };
  throw new Error(`--source must be auto, grouplens or local:<dir>, not "${text}"`);
}

async function connect(settings: Settings): Promise<Client> {
  const connection = await Connection.connect({ address: settings.temporal.address });
  return new Client({ connection, namespace: settings.temporal.namespace });
}

async function run(argv: string[], settings: Settings): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: 'string', default: 'ml-latest-small' },
      source: { type: 'string', default: 'auto' },
      'run-id': { type: 'string' },
      bucket: { type: 'string', default: settings.s3.bucket },
      prefix: { type: 'string', default: settings.s3.prefix },
      'no-wait': { type: 'boolean', default: false },
    },
  });
  const input = TrainingPipelineInput.parse({
    dataset: values.dataset,
    source: parseSource(values.source!),
    bucket: values.bucket,
    prefix: values.prefix,
    runId: values['run-id'] ?? newRunId(values.dataset!, new Date(), randomBytes(3).toString('hex')),
  });
  const client = await connect(settings);
  const workflowId = workflowIdFor(input.runId);
  const handle = await client.workflow.start(trainingPipeline, {
    taskQueue: settings.temporal.taskQueue,
    workflowId,
    args: [input],
    memo: { dataset: input.dataset },
  });
  console.error(`started ${workflowId}\nWeb UI: ${webUiLink(settings, workflowId)}`);
  if (values['no-wait']) return 0;
  try {
    console.log(JSON.stringify(await handle.result(), null, 2));
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      console.error(`run ${input.runId} failed: ${err.cause?.message ?? err.message}`);
      return 1;
    }
    throw err;
  } finally {
    console.error(`Web UI: ${webUiLink(settings, workflowId)}`);
  }
  return 0;
}

async function result(argv: string[], settings: Settings): Promise<number> {
  const runId = argv[0];
  if (!runId) throw new Error('usage: lensflow result <runId>');
  const client = await connect(settings);
  console.log(JSON.stringify(await client.workflow.getHandle(workflowIdFor(runId)).result(), null, 2));
  return 0;
}

const COMMANDS: Record<string, (argv: string[], settings: Settings) => Promise<number>> = { run, result };

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  const handler = command ? COMMANDS[command] : undefined;
  if (!handler) {
    console.error(`usage: lensflow <${Object.keys(COMMANDS).join('|')}> [options]`);
    return 2;
  }
  return handler(rest, loadSettings());
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
