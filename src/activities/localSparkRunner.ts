/**
 * Runs an EMR-shaped Spark step on local Spark: the same spark-submit arguments, with
 * `--deploy-mode cluster` dropped, a local master and the s3a settings added, and `s3://` read as
 * `s3a://`. spark-submit runs in its own process group so that cancelling kills the whole JVM tree.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { SPARK_SETTINGS } from '../contracts/sparkSettings';
import type { SparkStep } from '../contracts/sparkStep';
import type { Settings } from '../settings';
import type { SparkStepRunner, StepContext } from './sparkRunner';

const OUTPUT_TAIL_BYTES = 8_000;
const KILL_GRACE_MS = 3_000;
const HEARTBEAT_MS = 2_000;

/** Hadoop/Spark settings for s3a against the configured endpoint and the S3A magic committer (`SPARK_SETTINGS`). */
export function localSparkConf(settings: Settings): string[] {
  const { spark, s3 } = settings;
  if (!spark.jarsDir) throw new Error('LENSFLOW_SPARK_JARS is not set: run `make setup` and start the worker with `make up`');
  const conf: Record<string, string> = {
    ...SPARK_SETTINGS.local,
    'spark.driver.extraClassPath': join(spark.jarsDir, '*'),
    'spark.executor.extraClassPath': join(spark.jarsDir, '*'),
    // Keep the step log (and the output tail a failure quotes) to warnings and the job's own lines.
    'spark.log.level': 'WARN',
    // Spark's default of 200 shuffle partitions means 200 tiny Parquet parts per table on a laptop.
    'spark.sql.shuffle.partitions': String(spark.shufflePartitions),
    'spark.default.parallelism': String(spark.shufflePartitions),
    'spark.hadoop.fs.s3a.endpoint.region': s3.region,
    ...SPARK_SETTINGS.committer,
  };
  const local = /^local\[(\d+|\*)/.exec(spark.master);
  if (local) conf[SPARK_SETTINGS.alsBlocksConf] = local[1] === '*' ? String(cpus().length) : local[1]!;
  if (s3.endpoint) {
    Object.assign(conf, SPARK_SETTINGS.s3Endpoint);
    conf['spark.hadoop.fs.s3a.endpoint'] = s3.endpoint;
    conf['spark.hadoop.fs.s3a.connection.ssl.enabled'] = String(s3.endpoint.startsWith('https:'));
  }
  return Object.entries(conf).flatMap(([k, v]) => ['--conf', `${k}=${v}`]);
}

/** The local spark-submit command line for an EMR-shaped step. */
export function toLocalCommand(step: SparkStep, settings: Settings): { command: string; args: string[] } {
  if (!settings.spark.venv) throw new Error('LENSFLOW_VENV is not set: run `make setup` and start the worker with `make up`');
  const [, ...rest] = step.hadoopJarStep.args;
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--deploy-mode') {
      i++; // local Spark runs the driver here
      continue;
    }
    // Every S3 URI, also those inside JSON arguments such as the list of folds.
    args.push(rest[i]!.replace(/\bs3:\/\//g, 's3a://'));
  }
  const local = ['--master', settings.spark.master, '--driver-memory', settings.spark.driverMemory, ...localSparkConf(settings)];
  return { command: join(settings.spark.venv, 'bin', 'spark-submit'), args: [...local, ...args] };
}

/** Maps the `s3a://` URIs a locally run job reports back to the `s3://` form the pipeline uses. */
export function fromLocalUris(doc: unknown): unknown {
  if (typeof doc === 'string') return doc.replace(/\bs3a:\/\//g, 's3://');
  if (Array.isArray(doc)) return doc.map(fromLocalUris);
  if (doc && typeof doc === 'object') {
    return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, fromLocalUris(v)]));
  }
  return doc;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Stops a process group: SIGTERM, then SIGKILL after a grace period; resolves when it is gone. */
export async function stopGroup(pgid: number): Promise<void> {
  killGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + KILL_GRACE_MS;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  killGroup(pgid, 'SIGKILL');
  while (groupAlive(pgid)) await new Promise((r) => setTimeout(r, 50));
}

/** Runs steps with spark-submit on this machine. */
export function createLocalRunner(settings: Settings): SparkStepRunner {
  return { run: (step, ctx) => runLocalStep(step, settings, ctx) };
}

/**
 * Runs the step to completion. Resolves on exit 0; on a non-zero exit throws a non-retryable
 * `SparkJobFailed` carrying the tail of the job's stderr; on cancellation kills the process group.
 *
 * A step left running by a previous attempt (its worker died) cannot report its exit status to
 * us, so it is stopped and the step runs again from the start; jobs overwrite their outputs and
 * write their result last, so the rerun is clean.
 */
export async function runLocalStep(step: SparkStep, settings: Settings, ctx: StepContext): Promise<void> {
  if (ctx.resume?.kind === 'local' && groupAlive(ctx.resume.pgid)) await stopGroup(ctx.resume.pgid);
  const { command, args } = toLocalCommand(step, settings);
  const logDir = join(settings.stateDir, 'logs', 'steps');
  await mkdir(logDir, { recursive: true });
  const logPath = join(logDir, `${ctx.logName}.log`);
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(command, args, {
    detached: true, // its own process group: cancelling kills spark-submit and its JVM together
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PYSPARK_PYTHON: join(settings.spark.venv!, 'bin', 'python'),
      SPARK_LOCAL_IP: '127.0.0.1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
  // PySpark prints the driver's Python traceback on stdout and the JVM's errors on stderr: the
  // failure message quotes the tail of both, interleaved as they came.
  let tail = '';
  const record = (chunk: Buffer) => {
    log.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout.on('data', record);
  child.stderr.on('data', record);
  const pgid = child.pid!;
  const handle = { kind: 'local', pgid } as const;
  ctx.heartbeat(handle);
  const onCancel = () => void stopGroup(pgid);
  ctx.cancelled.addEventListener('abort', onCancel, { once: true });
  const beat = setInterval(() => ctx.heartbeat(handle), HEARTBEAT_MS);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    if (ctx.cancelled.aborted) {
      await stopGroup(pgid);
      throw ctx.cancelled.reason ?? new Error('cancelled');
    }
    if (code !== 0) {
      throw ApplicationFailure.nonRetryable(
        `Spark step "${step.name}" exited with code ${code}; full log: ${logPath}\n--- output tail ---\n${tail}`,
        'SparkJobFailed',
      );
    }
  } finally {
    clearInterval(beat);
    ctx.cancelled.removeEventListener('abort', onCancel);
    log.end();
  }
}
