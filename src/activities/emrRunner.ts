/**
 * Runs EMR-shaped Spark steps on an Amazon EMR cluster: AddJobFlowSteps, then DescribeStep polls
 * until the step ends. The step's ids are heartbeated, so a retried activity resumes polling the
 * same step instead of adding another; cancelling the activity cancels the step on the cluster.
 */
import { gunzipSync } from 'node:zlib';
import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeClusterCommand,
  DescribeStepCommand,
  EMRClient,
  ListStepsCommand,
  ModifyClusterCommand,
  type Step,
  type StepState,
} from '@aws-sdk/client-emr';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { StepHandle } from '../contracts/runner';
import type { SparkStep } from '../contracts/sparkStep';
import { isNotFound } from './s3Client';
import type { SparkStepRunner, StepContext } from './sparkRunner';

const STDERR_TAIL_CHARS = 8_000;
const MAX_BACKOFF_MS = 60_000;
/** Log polls back off from min(pollMs, 2 s) to this: EMR pushes step logs about every 5 minutes. */
const MAX_LOG_POLL_MS = 30_000;
const HEARTBEAT_MS = 5_000;
/** States in which a step may still run; CANCEL_PENDING ends in CANCELLED (or COMPLETED, if too late). */
const ACTIVE_STEP_STATES: ReadonlySet<StepState | undefined> = new Set<StepState | undefined>(['PENDING', 'RUNNING', 'CANCEL_PENDING']);

/** Where the runner reports what it tolerated (retried polls, refused cancellations). */
export interface RunnerLogger {
  warn(message: string, meta?: Record<string, unknown>): void;
}

/** The activity's logger inside an activity; a process warning elsewhere (scripts, tests). */
const activityLogger: RunnerLogger = {
  warn(message, meta) {
    const ctx = asyncLocalStorage.getStore();
    if (ctx) ctx.log.warn(message, meta);
    else process.emitWarning(`${message} ${meta ? JSON.stringify(meta) : ''}`.trim(), 'LensflowEmrRunner');
  },
};

export interface EmrRunnerOptions {
  /** Between DescribeStep polls, each one a heartbeat. 15 s by default: EMR's Describe APIs are rate-limited per account. */
  pollMs?: number;
  /** Consecutive transient errors (throttling, 5xx, resets) one poll loop survives before the attempt fails, retryably. 8 by default. */
  maxTransientErrors?: number;
  /** How long a cancelled step may take to leave PENDING/RUNNING before the runner stops waiting. 2 min by default. */
  cancelTimeoutMs?: number;
  /**
   * How long to wait for a failed step's logs to appear in S3, polling with backoff. EMR uploads step
   * logs asynchronously, about every 5 minutes: 8 min by default.
   */
  logWaitMs?: number;
  /** Raise the cluster's StepConcurrencyLevel to this (ModifyCluster) before the first step; unset: leave it. */
  stepConcurrencyLevel?: number;
  logger?: RunnerLogger;
}

type ResolvedOptions = Required<Omit<EmrRunnerOptions, 'stepConcurrencyLevel'>>;

/** The runner's defaults, spelled out once. */
export function resolveEmrRunnerOptions(opts: EmrRunnerOptions = {}): ResolvedOptions {
  return {
    pollMs: opts.pollMs ?? 15_000,
    maxTransientErrors: opts.maxTransientErrors ?? 8,
    cancelTimeoutMs: opts.cancelTimeoutMs ?? 120_000,
    logWaitMs: opts.logWaitMs ?? 480_000,
    logger: opts.logger ?? activityLogger,
  };
}

/**
 * An EMR client whose requests cannot hang a poll loop forever (the Node handler has no request
 * timeout by default). Without `endpoint` it talks to real EMR in `region` with the default
 * credential chain; tests pass their server's endpoint and static credentials.
 */
export function createEmrClient(opts: {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  maxAttempts?: number;
}): EMRClient {
  return new EMRClient({
    region: opts.region,
    endpoint: opts.endpoint,
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? 4,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  });
}

const TRANSIENT_NAMES = new Set([
  'ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded', 'RequestThrottled',
  'InternalServerError', 'InternalServerException', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException',
  'RequestTimeout', 'RequestTimeoutException', 'TimeoutError',
]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

/** True for errors worth retrying: throttling, 5xx, timeouts and dropped connections. */
export function isTransientAwsError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } } | undefined;
  if (!e || typeof e !== 'object') return false;
  if (e.$retryable) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && TRANSIENT_CODES.has(e.code)) return true;
  const status = e.$metadata?.httpStatusCode;
  return status !== undefined && (status >= 500 || status === 429);
}

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff from `baseMs`, capped, with jitter so parallel pollers spread out. */
export function backoffMs(baseMs: number, failures: number): number {
  const ceiling = Math.min(baseMs * 2 ** (failures - 1), MAX_BACKOFF_MS);
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** `s3://bucket/key` (also `s3n://`, `s3a://`) → bucket and key. */
function splitS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const m = /^s3[an]?:\/\/([^/]+)\/?(.*)$/.exec(uri);
  return m ? { bucket: m[1]!, key: m[2]! } : undefined;
}

/** Where EMR puts a step's stderr: `<LogUri>/<clusterId>/steps/<stepId>/stderr.gz`. */
export function stepStderrUri(logUri: string, clusterId: string, stepId: string): string {
  return `${logUri.replace(/\/+$/, '')}/${clusterId}/steps/${stepId}/stderr.gz`;
}

/** The EMR console page of a cluster (its steps, their logs, the Spark UI). */
export function emrConsoleUrl(region: string, clusterId: string): string {
  return `https://${region}.console.aws.amazon.com/emr/home?region=${region}#/clusterDetails/${clusterId}`;
}
/**
 * Raises an existing cluster's StepConcurrencyLevel to `level` with ModifyCluster (never lowers
 * it: others may rely on it). Returns the level in effect.
 */
export async function ensureStepConcurrency(emr: EMRClient, clusterId: string, level: number): Promise<number> {
  const { Cluster } = await emr.send(new DescribeClusterCommand({ ClusterId: clusterId }));
  const current = Cluster?.StepConcurrencyLevel ?? 1;
  if (current >= level) return current;
  const res = await emr.send(new ModifyClusterCommand({ ClusterId: clusterId, StepConcurrencyLevel: level }));
  return res.StepConcurrencyLevel ?? level;
}

/**
 * An EMR runner bound to one cluster. With `stepConcurrencyLevel`, the cluster's level is raised
 * once, before the first step (an existing cluster keeps EMR's default of 1 otherwise).
 */
export function createEmrRunner(emr: EMRClient, s3: S3Client, clusterId: string, opts: EmrRunnerOptions = {}): SparkStepRunner {
  const o = resolveEmrRunnerOptions(opts);
  let ready: Promise<unknown> | undefined;
  return {
    async run(step, ctx) {
      const level = opts.stepConcurrencyLevel;
      if (level !== undefined) {
        ready ??= ensureStepConcurrency(emr, clusterId, level).catch((err: unknown) => {
          ready = undefined; // let the next step try again
          throw err;
        });
        await ready;
      }
      return runEmrStep(emr, s3, clusterId, step, ctx, o);
    },
  };
}

/**
 * Runs one step to its end on the cluster. Resolves when it COMPLETED; throws non-retryable
 * `SparkJobFailed` (with the tail of the step's stderr.gz), `SparkStepCancelled` or
 * `SparkStepInterrupted` for the other final states (and `EmrStepRejected` when EMR refuses the
 * step, e.g. on a terminated cluster); on `ctx.cancelled` cancels the step with
 * SEND_INTERRUPT, waits (bounded) for it to stop and rethrows the cancellation. Transient API
 * errors while polling are retried with backoff; past `maxTransientErrors` in a row the last one is
 * thrown as is, so the activity's retry resumes the same step from its heartbeat.
 */
async function runEmrStep(emr: EMRClient, s3: S3Client, clusterId: string, step: SparkStep, ctx: StepContext, o: ResolvedOptions): Promise<void> {
  if (ctx.cancelled.aborted) throw ctx.cancelled.reason ?? new Error('cancelled'); // add nothing to cancel right away
  const stepId = await startOrResumeStep(emr, clusterId, step, ctx);
  const handle: StepHandle = { kind: 'emr', clusterId, stepId };
  const beat = () => ctx.heartbeat(handle);
  beat();
  // Besides one beat per poll, a steady beat: a slow API call (SDK retries, backoff) must not look
  // like a lost worker to a heartbeat timeout shorter than the worst case of one poll.
  const steady = setInterval(beat, HEARTBEAT_MS);
  try {
    const final = await pollUntilDone(emr, clusterId, stepId, ctx.cancelled, beat, o);
    if (ctx.cancelled.aborted) {
      await cancelStep(emr, clusterId, stepId, o);
      throw ctx.cancelled.reason ?? new Error('cancelled');
    }
    const state = final!.Status?.State;
    if (state === 'COMPLETED') return;
    const where = `Spark step "${step.name}" (${stepId} on ${clusterId})`;
    const reason = final!.Status?.StateChangeReason?.Message;
    if (state === 'CANCELLED') {
      throw ApplicationFailure.nonRetryable(`${where} was cancelled outside this activity${reason ? `: ${reason}` : ''}`, 'SparkStepCancelled', handle);
    }
    if (state === 'INTERRUPTED') {
      throw ApplicationFailure.nonRetryable(`${where} was interrupted (its cluster terminated?)${reason ? `: ${reason}` : ''}`, 'SparkStepInterrupted', handle);
    }
    throw await jobFailure(emr, s3, clusterId, final!, where, beat, o);
  } finally {
    clearInterval(steady);
  }
}

/**
 * The step to poll: the one a previous attempt heartbeated, else an active step on the cluster with
 * the same name and arguments (a previous attempt added it but died before its heartbeat was
 * recorded), else a new one. AddJobFlowSteps has no idempotency token, so this lookup is what keeps
 * activity retries from running a job twice.
 */
async function startOrResumeStep(emr: EMRClient, clusterId: string, step: SparkStep, ctx: StepContext): Promise<string> {
  if (ctx.resume?.kind === 'emr' && ctx.resume.clusterId === clusterId) return ctx.resume.stepId;
  const adopted = await findActiveStep(emr, clusterId, step);
  if (adopted) return adopted;
  let res;
  try {
    res = await emr.send(
      new AddJobFlowStepsCommand({
        JobFlowId: clusterId,
        Steps: [{
          Name: step.name,
          ActionOnFailure: step.actionOnFailure,
          HadoopJarStep: { Jar: step.hadoopJarStep.jar, Args: step.hadoopJarStep.args },
        }],
      }),
    );
  } catch (err) {
    // A terminated or unknown cluster, or a malformed step: retrying the activity cannot help.
    const name = (err as { name?: string }).name;
    if (name === 'ValidationException' || name === 'InvalidRequestException') {
      throw ApplicationFailure.nonRetryable(`EMR rejected step "${step.name}" on ${clusterId}: ${errorText(err)}`, 'EmrStepRejected');
    }
    throw err;
  }
  const stepId = res.StepIds?.[0];
  if (!stepId) throw new Error(`AddJobFlowSteps on ${clusterId} returned no step id`);
  return stepId;
}

/** An active step on the cluster with this exact name and arguments, if any. */
export async function findActiveStep(emr: EMRClient, clusterId: string, step: SparkStep): Promise<string | undefined> {
  const args = JSON.stringify(step.hadoopJarStep.args);
  let marker: string | undefined;
  do {
    const page = await emr.send(new ListStepsCommand({ ClusterId: clusterId, StepStates: ['PENDING', 'RUNNING'], Marker: marker }));
    const hit = page.Steps?.find((s) => s.Name === step.name && JSON.stringify(s.Config?.Args ?? []) === args);
    if (hit?.Id) return hit.Id;
    marker = page.Marker;
  } while (marker);
  return undefined;
}

/** DescribeStep every `pollMs` until the step leaves PENDING/RUNNING; undefined when `signal` aborted first. */
async function pollUntilDone(
  emr: EMRClient, clusterId: string, stepId: string, signal: AbortSignal, beat: () => void, o: ResolvedOptions,
): Promise<Step | undefined> {
  let failures = 0;
  for (;;) {
    if (signal.aborted) return undefined;
    let step: Step | undefined;
    try {
      step = (await emr.send(new DescribeStepCommand({ ClusterId: clusterId, StepId: stepId }), { abortSignal: signal })).Step;
      failures = 0;
    } catch (err) {
      if (signal.aborted) return undefined;
      if (!isTransientAwsError(err) || ++failures > o.maxTransientErrors) throw err;
      const delay = backoffMs(o.pollMs, failures);
      o.logger.warn(`DescribeStep ${stepId} on ${clusterId} failed transiently; retrying`, { failures, delayMs: delay, error: errorText(err) });
      beat();
      await sleep(delay, signal);
      continue;
    }
    beat();
    if (!ACTIVE_STEP_STATES.has(step?.Status?.State)) return step;
    await sleep(o.pollMs, signal);
  }
}

/** CancelSteps with SEND_INTERRUPT, then waits (bounded) until the step has left PENDING/RUNNING. */
async function cancelStep(emr: EMRClient, clusterId: string, stepId: string, o: ResolvedOptions): Promise<void> {
  try {
    const res = await emr.send(new CancelStepsCommand({ ClusterId: clusterId, StepIds: [stepId], StepCancellationOption: 'SEND_INTERRUPT' }));
    const info = res.CancelStepsInfoList?.find((i) => i.StepId === stepId);
    if (info?.Status === 'FAILED') o.logger.warn(`EMR did not cancel step ${stepId} on ${clusterId}`, { reason: info.Reason });
  } catch (err) {
    o.logger.warn(`CancelSteps for ${stepId} on ${clusterId} failed; the step may keep running`, { error: errorText(err) });
    return;
  }
  const deadline = Date.now() + o.cancelTimeoutMs;
  const interval = Math.min(o.pollMs, 5_000);
  let failures = 0;
  while (Date.now() < deadline) {
    try {
      const { Step } = await emr.send(new DescribeStepCommand({ ClusterId: clusterId, StepId: stepId }));
      if (!ACTIVE_STEP_STATES.has(Step?.Status?.State)) return;
    } catch (err) {
      if (!isTransientAwsError(err) || ++failures > o.maxTransientErrors) {
        o.logger.warn(`could not confirm that step ${stepId} on ${clusterId} stopped`, { error: errorText(err) });
        return;
      }
    }
    await sleep(interval);
  }
  o.logger.warn(`step ${stepId} on ${clusterId} was still active ${o.cancelTimeoutMs} ms after CancelSteps`);
}

/** A log file read from S3: its text, or why there is none. */
type LogRead = { uri: string; text: string } | { uri: string; error: string; missing?: boolean };

/**
 * The non-retryable `SparkJobFailed` for a FAILED step: EMR's failure details, the job's own error
 * and the tail of the step's stderr.
 *
 * Where the job's error is depends on how Spark ran the Python driver. spark-submit's PythonRunner
 * merges the driver's stderr into its own *stdout*, so the Python traceback is in the step's
 * stdout.gz in client deploy mode, and in the driver container's stdout.gz
 * (`<LogUri>/<clusterId>/containers/<appId>/container_…_000001/`) in cluster deploy mode, where
 * the step's stderr only holds the YARN client's "finished with failed status". All of them are
 * read; the first Python traceback found (else the last Java exception) is quoted.
 */
async function jobFailure(
  emr: EMRClient, s3: S3Client, clusterId: string, step: Step, where: string, beat: () => void, o: ResolvedOptions,
): Promise<ApplicationFailure> {
  const details = step.Status?.FailureDetails;
  const lines = [`${where} failed`];
  if (details?.Reason || details?.Message) lines.push(`EMR: ${[details.Reason, details.Message].filter(Boolean).join(' — ')}`);

  let logUri: string | undefined;
  try {
    logUri = (await emr.send(new DescribeClusterCommand({ ClusterId: clusterId }))).Cluster?.LogUri;
  } catch (err) {
    lines.push(`(could not read the cluster's LogUri: ${errorText(err)})`);
  }
  const deadline = Date.now() + o.logWaitMs;
  const reads: LogRead[] = [];
  let stderr: LogRead | undefined;
  if (logUri) {
    const stderrUri = stepStderrUri(logUri, clusterId, step.Id!);
    stderr = await readGzipLog(s3, stderrUri, deadline, beat, o);
    reads.push(stderr, await readGzipLog(s3, stderrUri.replace(/stderr\.gz$/, 'stdout.gz'), deadline, beat, o));
    const appId = 'text' in stderr ? [...stderr.text.matchAll(/application_\d+_\d+/g)].at(-1)?.[0] : undefined;
    if (appId) reads.push(...(await readDriverContainerLogs(s3, `${logUri.replace(/\/+$/, '')}/${clusterId}/containers/${appId}/`, deadline, beat, o)));
  } else {
    lines.push('(the cluster has no LogUri: EMR kept no step logs)');
  }
  if (details?.LogFile && splitS3Uri(details.LogFile) && !reads.some((r) => r.uri === details.LogFile)) {
    reads.push(await readGzipLog(s3, details.LogFile, deadline, beat, o));
  }

  const texts = reads.filter((r): r is { uri: string; text: string } => 'text' in r);
  const excerpt = pickJobError(texts);
  if (excerpt) lines.push(`--- the job's error (${excerpt.uri}) ---`, excerpt.text);
  if (stderr && 'text' in stderr) lines.push(`--- ${stderr.uri} (tail) ---`, stderr.text.slice(-STDERR_TAIL_CHARS));
  for (const r of reads) if ('error' in r) lines.push(`(${r.uri}: ${r.error})`);
  if (stderr && 'missing' in stderr) {
    const region = await emr.config.region().catch(() => 'us-east-1');
    lines.push(
      `The step's logs did not arrive within ${Math.round(o.logWaitMs / 1000)} s (EMR uploads them about every 5 minutes; ` +
      `LENSFLOW_EMR_LOG_WAIT_SECONDS waits longer). Look later under ${stderr.uri.replace(/stderr\.gz$/, '')} ` +
      `or in the EMR console: ${emrConsoleUrl(region, clusterId)}`,
    );
  }
  return ApplicationFailure.nonRetryable(lines.join('\n'), 'SparkJobFailed', { clusterId, stepId: step.Id, logs: reads.map((r) => r.uri) });
}

const EXCERPT_CHARS = 3_000;
const LOG_LINE_PREFIX = /^(\d\d\/\d\d\/\d\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)/;

/** The job's error in a log: its last Python traceback, else its last Java exception line and what follows. */
export function jobErrorExcerpt(text: string): string | undefined {
  const tb = text.lastIndexOf('Traceback (most recent call last):');
  if (tb >= 0) {
    const out: string[] = [];
    let sawException = false;
    for (const line of text.slice(tb).split('\n')) {
      if (sawException && (LOG_LINE_PREFIX.test(line) || line.trim() === '')) break;
      out.push(line);
      if (!/^\s/.test(line) && !line.startsWith('Traceback') && !line.startsWith('During handling')) sawException = true;
    }
    return out.join('\n').slice(0, EXCERPT_CHARS);
  }
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^(Exception in thread|Caused by:|[\w$.]+(Exception|Error)(:|$))/.test(lines[i]!)) {
      return lines.slice(i, i + 6).join('\n').slice(0, EXCERPT_CHARS);
    }
  }
  return undefined;
}

/**
 * The first Python traceback in `texts`; else the Java exception of the last log that has one
 * (the driver container's, when there is one, rather than the YARN client's report in stderr).
 */
function pickJobError(texts: { uri: string; text: string }[]): { uri: string; text: string } | undefined {
  const found = texts.map((t) => ({ uri: t.uri, text: jobErrorExcerpt(t.text) })).filter((t): t is { uri: string; text: string } => !!t.text);
  return found.find((t) => t.text.startsWith('Traceback')) ?? found.at(-1);
}

/** stdout.gz and stderr.gz of a YARN application's driver container (the last attempt's `_000001`). */
async function readDriverContainerLogs(s3: S3Client, folderUri: string, deadline: number, beat: () => void, o: ResolvedOptions): Promise<LogRead[]> {
  const loc = splitS3Uri(folderUri)!;
  for (let attempt = 0; ; attempt++) {
    try {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.key, MaxKeys: 1_000 }));
      const drivers = (listed.Contents ?? [])
        .map((c) => c.Key!)
        .filter((k) => /container_[^/]*_000001\/(stdout|stderr)\.gz$/.test(k))
        .sort();
      if (drivers.length > 0) {
        const folder = drivers.at(-1)!.replace(/[^/]+$/, '');
        const base = `s3://${loc.bucket}/${folder}`;
        return [await readGzipLog(s3, `${base}stdout.gz`, deadline, beat, o), await readGzipLog(s3, `${base}stderr.gz`, deadline, beat, o)];
      }
    } catch (err) {
      if (!isTransientAwsError(err)) return [{ uri: folderUri, error: errorText(err) }];
    }
    if (Date.now() >= deadline) return [{ uri: folderUri, error: 'no driver container logs found' }];
    beat();
    await sleep(logPollDelay(o, attempt, deadline));
  }
}

/** The wait before log poll `attempt` + 1: doubling from min(pollMs, 2 s) up to 30 s, never past `deadline`. */
function logPollDelay(o: ResolvedOptions, attempt: number, deadline: number): number {
  const delay = Math.min(Math.min(o.pollMs, 2_000) * 2 ** attempt, MAX_LOG_POLL_MS);
  return Math.max(0, Math.min(delay, deadline - Date.now()));
}

/** Reads a gzipped log from S3, waiting (with backoff) until `deadline` for EMR to upload it. */
async function readGzipLog(s3: S3Client, uri: string, deadline: number, beat: () => void, o: ResolvedOptions): Promise<LogRead> {
  const loc = splitS3Uri(uri)!;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      let text: string;
      try {
        text = gunzipSync(bytes).toString('utf8');
      } catch {
        text = bytes.toString('utf8'); // not gzipped after all: show it as it is
      }
      return { uri, text };
    } catch (err) {
      if (!isNotFound(err) && !isTransientAwsError(err)) return { uri, error: errorText(err) };
      if (Date.now() >= deadline) return { uri, error: `not found within ${Math.round(o.logWaitMs / 1000)} s`, missing: true };
    }
    beat();
    await sleep(logPollDelay(o, attempt, deadline));
  }
}
