/**
 * A small EMR API server for tests: EMR's JSON 1.1 protocol on 127.0.0.1 (POST /, `X-Amz-Target:
 * ElasticMapReduce.<Operation>`), with clusters and steps kept in memory and every step executed
 * for real on local Spark, translated by the local runner's `toLocalCommand`.
 *
 * Operations: RunJobFlow, DescribeCluster, ListClusters, TerminateJobFlows, AddJobFlowSteps,
 * DescribeStep, ListSteps, CancelSteps. Signatures are not checked.
 *
 * How it differs from EMR, on purpose:
 * - Clusters go STARTING → BOOTSTRAPPING → WAITING in `clusterStartupMs` (default 300 ms).
 * - Steps run one at a time per cluster, in order (EMR's default StepConcurrencyLevel 1). Only
 *   `command-runner.jar` steps are supported: `spark-submit` is translated for local Spark, any
 *   other command runs as given (tests use `bash -c` to fake what EMR would log).
 * - CancelSteps on a RUNNING step kills its process group (SIGTERM, SIGKILL after 3 s) and marks it
 *   CANCELLED once the group is gone. Real EMR (SEND_INTERRUPT, release ≥ 5.28) interrupts the
 *   step's process and may leave an application it already submitted to YARN running.
 * - A step's stdout.gz and stderr.gz are uploaded to `<LogUri>/<clusterId>/steps/<stepId>/` before
 *   its final state is visible; real EMR uploads them asynchronously, minutes later at worst.
 * - Terminating a cluster CANCELs its pending steps and INTERRUPTs the running one.
 * - Of RunJobFlow's Configurations only `spark-defaults` has an effect (as --conf on each spark-submit).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { toLocalCommand } from '../../src/activities/localSparkRunner';
import { createS3Client } from '../../src/activities/s3Client';
import { loadSettings, type Settings } from '../../src/settings';

export type EmrOperation =
  | 'RunJobFlow' | 'DescribeCluster' | 'ListClusters' | 'TerminateJobFlows'
  | 'AddJobFlowSteps' | 'DescribeStep' | 'ListSteps' | 'CancelSteps';

/** A transient fault the next calls of an operation answer with. */
export type FaultKind = 'InternalServerError' | 'ThrottlingException' | 'ConnectionReset';

export interface RecordedCall {
  operation: string;
  input: Record<string, unknown>;
  /** The fault answered instead of the operation, if any. */
  fault?: FaultKind;
}

type Json = Record<string, unknown>;

interface StepRecord {
  id: string;
  name: string;
  actionOnFailure: string;
  jar: string;
  args: string[];
  state: string;
  reason?: { Code?: string; Message?: string };
  failureDetails?: { Reason?: string; Message?: string; LogFile?: string };
  created: number;
  started?: number;
  ended?: number;
  pgid?: number;
  /** Why the step is being stopped, if it is: the final state it gets once its processes are gone. */
  stopAs?: 'CANCELLED' | 'INTERRUPTED';
}

interface ClusterRecord {
  id: string;
  name: string;
  state: string;
  reason?: { Code?: string; Message?: string };
  created: number;
  ready?: number;
  ended?: number;
  logUri?: string;
  releaseLabel?: string;
  applications: { Name?: string }[];
  tags: { Key?: string; Value?: string }[];
  serviceRole?: string;
  jobFlowRole?: string;
  subnetId?: string;
  /** RunJobFlow's Configurations, as given; `spark-defaults` properties reach every spark-submit. */
  configurations: { Classification?: string; Properties?: Record<string, string> }[];
  keepAlive: boolean;
  terminationProtected: boolean;
  visibleToAllUsers: boolean;
  steps: StepRecord[];
  /** Ends the cluster before it is ready, for tests of start-up failures. */
  failStartWith?: { Code: string; Message: string };
}

class EmrError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

const KILL_GRACE_MS = 3_000;
const GROUP_EXIT_TIMEOUT_MS = 15_000;
const LOG_CAP_BYTES = 4 * 1024 * 1024;
const PAGE_SIZE = 50;

const now = () => Date.now() / 1000;
const newId = (prefix: string) =>
  prefix + [...randomBytes(13)].map((b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'[b % 36]).join('');

/**
 * Processes of a process group that are still alive (zombies excluded: they are dead, and whether
 * anything reaps them depends on the machine's init). Linux /proc only.
 */
export function liveGroupMembers(pgid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(join('/proc', entry, 'stat'), 'utf8');
      // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
      const cmdline = readFileSync(join('/proc', entry, 'cmdline'), 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(entry), cmdline });
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

/** Live processes (any group) whose command line contains `needle`, zombies excluded. */
export function liveProcessesMatching(needle: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(join('/proc', entry, 'stat'), 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const cmdline = readFileSync(join('/proc', entry, 'cmdline'), 'utf8').split('\0').join(' ').trim();
      if (cmdline.includes(needle)) out.push({ pid: Number(entry), cmdline });
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

/** SIGTERM, SIGKILL after a grace period; resolves when no live member is left (bounded). */
async function stopGroup(pgid: number): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const killAt = Date.now() + KILL_GRACE_MS;
  const giveUpAt = Date.now() + GROUP_EXIT_TIMEOUT_MS;
  let killed = false;
  while (liveGroupMembers(pgid).length > 0 && Date.now() < giveUpAt) {
    if (!killed && Date.now() >= killAt) {
      signalGroup(pgid, 'SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Keeps the last `cap` bytes of a stream. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.cap) this.size -= this.chunks.shift()!.length;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface EmrTestServerOptions {
  /** Defaults to `loadSettings(process.env)`: the stack's venv, jars and S3 endpoint. */
  settings?: Settings;
  /** Where step logs are uploaded; defaults to a client for `settings.s3`. */
  s3?: S3Client;
}

/** The test server; `start()` listens on an ephemeral port of 127.0.0.1. */
export class EmrTestServer {
  /** Every request, in order (faulted ones included), for tests to assert on. */
  readonly calls: RecordedCall[] = [];
  /** How long a new cluster takes from STARTING to WAITING. */
  clusterStartupMs = 300;
  /** Errors from uploading step logs (tests expect none). */
  readonly logUploadErrors: unknown[] = [];

  private readonly settings: Settings;
  private readonly s3: S3Client;
  private readonly ownS3: boolean;
  private readonly clusters = new Map<string, ClusterRecord>();
  private readonly faults = new Map<string, FaultKind[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private nextStartFailure?: { Code: string; Message: string };
  private server?: Server;

  constructor(opts: EmrTestServerOptions = {}) {
    this.settings = opts.settings ?? loadSettings(process.env);
    this.ownS3 = !opts.s3;
    this.s3 = opts.s3 ?? createS3Client(this.settings.s3);
  }

  /** Listens on 127.0.0.1 (port 0); `close()` stops every step's processes and the server. */
  async start(): Promise<{ endpoint: string; close(): Promise<void> }> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { endpoint: `http://127.0.0.1:${port}`, close: () => this.close() };
  }

  /** The next `count` calls of `operation` answer with `kind` instead (appended to any queued faults). */
  injectFault(operation: EmrOperation, count: number, kind: FaultKind = 'InternalServerError'): void {
    const queue = this.faults.get(operation) ?? [];
    for (let i = 0; i < count; i++) queue.push(kind);
    this.faults.set(operation, queue);
  }

  /** Drops faults not served yet; returns how many there were. */
  clearFaults(): number {
    let left = 0;
    for (const q of this.faults.values()) left += q.length;
    this.faults.clear();
    return left;
  }

  /** The next cluster RunJobFlow starts ends TERMINATED_WITH_ERRORS with this reason instead of becoming ready. */
  failNextClusterStart(reason: { Code: string; Message: string }): void {
    this.nextStartFailure = reason;
  }

  /** The process group of a step's spark-submit while it runs. */
  stepProcessGroup(clusterId: string, stepId: string): number | undefined {
    return this.clusters.get(clusterId)?.steps.find((s) => s.id === stepId)?.pgid;
  }

  /** A step's current state, read directly (no call recorded). */
  stepState(clusterId: string, stepId: string): string | undefined {
    return this.clusters.get(clusterId)?.steps.find((s) => s.id === stepId)?.state;
  }

  private async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const cluster of this.clusters.values()) {
      for (const step of cluster.steps) if (step.state === 'RUNNING' && step.pgid) step.stopAs ??= 'INTERRUPTED';
      for (const step of cluster.steps) if (step.pgid) signalGroup(step.pgid, 'SIGKILL');
    }
    await Promise.allSettled([...this.running]);
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (this.ownS3) this.s3.destroy();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  // --- HTTP and the JSON 1.1 protocol -------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('ElasticMapReduce.') ? target.slice('ElasticMapReduce.'.length) : target;
    let input: Json = {};
    try {
      input = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json) : {};
    } catch {
      return this.reply(res, 400, { __type: 'SerializationException', message: 'request body is not JSON' });
    }
    const fault = this.faults.get(operation)?.shift();
    this.calls.push({ operation, input, fault });
    if (fault === 'ConnectionReset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'InternalServerError') return this.reply(res, 500, { __type: 'InternalServerError', message: 'injected fault' });
    if (fault === 'ThrottlingException') return this.reply(res, 400, { __type: 'ThrottlingException', message: 'Rate exceeded (injected)' });
    try {
      if (req.method !== 'POST') throw new EmrError('InvalidRequestException', `${req.method} is not supported`);
      const handler = this.handlers[operation as EmrOperation];
      if (!handler) throw new EmrError('UnknownOperationException', `unknown operation ${target || '(no X-Amz-Target)'}`);
      this.reply(res, 200, handler(input));
    } catch (err) {
      if (err instanceof EmrError) this.reply(res, err.status, { __type: err.type, message: err.message });
      else this.reply(res, 500, { __type: 'InternalServerError', message: String(err) });
    }
  }

  private reply(res: ServerResponse, status: number, body: Json): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomBytes(16).toString('hex'),
    });
    res.end(text);
  }

  private readonly handlers: Record<EmrOperation, (input: Json) => Json> = {
    RunJobFlow: (input) => this.runJobFlow(input),
    DescribeCluster: (input) => ({ Cluster: this.clusterView(this.cluster(input.ClusterId)) }),
    ListClusters: (input) => this.listClusters(input),
    TerminateJobFlows: (input) => {
      const ids = (input.JobFlowIds as string[] | undefined) ?? [];
      const clusters = ids.map((id) => this.cluster(id));
      for (const c of clusters) {
        if (c.terminationProtected) throw new EmrError('ValidationException', `Could not shut down one or more job flows since they are termination protected.`);
      }
      for (const c of clusters) this.terminate(c, { Code: 'USER_REQUEST', Message: 'Terminated by user request' });
      return {};
    },
    AddJobFlowSteps: (input) => {
      const cluster = this.cluster(input.JobFlowId);
      if (['TERMINATING', 'TERMINATED', 'TERMINATED_WITH_ERRORS'].includes(cluster.state)) {
        throw new EmrError('ValidationException', 'A job flow that is shutting down, terminated, or finished may not be modified.');
      }
      const ids = this.addSteps(cluster, (input.Steps as Json[] | undefined) ?? []);
      this.pump(cluster);
      return { StepIds: ids };
    },
    DescribeStep: (input) => ({ Step: this.stepView(this.step(this.cluster(input.ClusterId), input.StepId)) }),
    ListSteps: (input) => this.listSteps(input),
    CancelSteps: (input) => this.cancelSteps(input),
  };

  // --- clusters -------------------------------------------------------------------------------

  private cluster(id: unknown): ClusterRecord {
    if (typeof id !== 'string' || !id) throw new EmrError('ValidationException', 'ClusterId is required');
    const c = this.clusters.get(id);
    if (!c) throw new EmrError('InvalidRequestException', `Cluster id '${id}' is not valid.`);
    return c;
  }

  private runJobFlow(input: Json): Json {
    const instances = input.Instances as Json | undefined;
    if (typeof input.Name !== 'string' || !input.Name) throw new EmrError('ValidationException', 'Name is required');
    if (!instances) throw new EmrError('ValidationException', 'Instances is required');
    const cluster: ClusterRecord = {
      id: newId('j-'),
      name: input.Name,
      state: 'STARTING',
      created: now(),
      logUri: input.LogUri as string | undefined,
      releaseLabel: input.ReleaseLabel as string | undefined,
      applications: (input.Applications as { Name?: string }[] | undefined) ?? [],
      tags: (input.Tags as { Key?: string; Value?: string }[] | undefined) ?? [],
      serviceRole: input.ServiceRole as string | undefined,
      jobFlowRole: input.JobFlowRole as string | undefined,
      subnetId: instances.Ec2SubnetId as string | undefined,
      configurations: (input.Configurations as ClusterRecord['configurations'] | undefined) ?? [],
      keepAlive: instances.KeepJobFlowAliveWhenNoSteps === true,
      terminationProtected: instances.TerminationProtected === true,
      visibleToAllUsers: input.VisibleToAllUsers !== false,
      steps: [],
      failStartWith: this.nextStartFailure,
    };
    this.nextStartFailure = undefined;
    this.clusters.set(cluster.id, cluster);
    this.addSteps(cluster, (input.Steps as Json[] | undefined) ?? []);
    this.later(this.clusterStartupMs / 2, () => {
      if (cluster.state !== 'STARTING') return;
      if (cluster.failStartWith) return this.terminate(cluster, cluster.failStartWith, 'TERMINATED_WITH_ERRORS');
      cluster.state = 'BOOTSTRAPPING';
      this.later(this.clusterStartupMs / 2, () => {
        if (cluster.state !== 'BOOTSTRAPPING') return;
        cluster.state = 'WAITING';
        cluster.ready = now();
        cluster.reason = { Code: undefined, Message: 'Cluster ready to run steps.' };
        this.pump(cluster);
      });
    });
    return { JobFlowId: cluster.id, ClusterArn: this.arn(cluster) };
  }

  private arn(c: ClusterRecord): string {
    return `arn:aws:elasticmapreduce:us-east-1:000000000000:cluster/${c.id}`;
  }

  private clusterStatus(c: ClusterRecord): Json {
    return {
      State: c.state,
      StateChangeReason: c.reason ?? {},
      Timeline: { CreationDateTime: c.created, ReadyDateTime: c.ready, EndDateTime: c.ended },
    };
  }

  private clusterView(c: ClusterRecord): Json {
    return {
      Id: c.id,
      Name: c.name,
      Status: this.clusterStatus(c),
      Ec2InstanceAttributes: { Ec2SubnetId: c.subnetId, IamInstanceProfile: c.jobFlowRole },
      LogUri: c.logUri,
      ReleaseLabel: c.releaseLabel,
      AutoTerminate: !c.keepAlive,
      TerminationProtected: c.terminationProtected,
      VisibleToAllUsers: c.visibleToAllUsers,
      Applications: c.applications.map((a) => ({ Name: a.Name, Version: '3.5.0' })),
      Tags: c.tags,
      Configurations: c.configurations,
      ServiceRole: c.serviceRole,
      NormalizedInstanceHours: 0,
      ClusterArn: this.arn(c),
      StepConcurrencyLevel: 1,
    };
  }

  private listClusters(input: Json): Json {
    const states = input.ClusterStates as string[] | undefined;
    const all = [...this.clusters.values()]
      .filter((c) => !states?.length || states.includes(c.state))
      .sort((a, b) => b.created - a.created);
    const start = Number(input.Marker ?? 0);
    const page = all.slice(start, start + PAGE_SIZE);
    return {
      Clusters: page.map((c) => ({ Id: c.id, Name: c.name, Status: this.clusterStatus(c), NormalizedInstanceHours: 0, ClusterArn: this.arn(c) })),
      Marker: start + PAGE_SIZE < all.length ? String(start + PAGE_SIZE) : undefined,
    };
  }

  private terminate(c: ClusterRecord, reason: { Code: string; Message: string }, finalState = 'TERMINATED'): void {
    if (['TERMINATING', 'TERMINATED', 'TERMINATED_WITH_ERRORS'].includes(c.state)) return;
    c.state = 'TERMINATING';
    c.reason = reason;
    for (const step of c.steps) {
      if (step.state === 'PENDING') this.endStep(step, 'CANCELLED', { Message: 'Cancelled because the cluster terminated' });
    }
    const running = c.steps.find((s) => s.state === 'RUNNING' || s.state === 'CANCEL_PENDING');
    const finish = () => {
      c.state = finalState;
      c.ended = now();
    };
    if (running?.pgid) {
      running.stopAs ??= 'INTERRUPTED';
      const done = stopGroup(running.pgid).then(() => this.later(100, finish));
      this.track(done);
    } else {
      this.later(Math.min(this.clusterStartupMs, 200), finish);
    }
  }

  // --- steps ----------------------------------------------------------------------------------

  private step(cluster: ClusterRecord, id: unknown): StepRecord {
    const s = cluster.steps.find((x) => x.id === id);
    if (!s) throw new EmrError('InvalidRequestException', `Step id '${String(id)}' is not valid.`);
    return s;
  }

  private addSteps(cluster: ClusterRecord, steps: Json[]): string[] {
    return steps.map((cfg) => {
      const jarStep = cfg.HadoopJarStep as Json | undefined;
      if (typeof cfg.Name !== 'string' || !jarStep || typeof jarStep.Jar !== 'string') {
        throw new EmrError('ValidationException', 'a step needs a Name and a HadoopJarStep with a Jar');
      }
      const step: StepRecord = {
        id: newId('s-'),
        name: cfg.Name,
        actionOnFailure: (cfg.ActionOnFailure as string | undefined) ?? 'TERMINATE_CLUSTER',
        jar: jarStep.Jar,
        args: (jarStep.Args as string[] | undefined) ?? [],
        state: 'PENDING',
        created: now(),
      };
      cluster.steps.push(step);
      return step.id;
    });
  }

  private stepView(s: StepRecord): Json {
    return {
      Id: s.id,
      Name: s.name,
      Config: { Jar: s.jar, Properties: {}, Args: s.args },
      ActionOnFailure: s.actionOnFailure,
      Status: {
        State: s.state,
        StateChangeReason: s.reason ?? {},
        FailureDetails: s.failureDetails,
        Timeline: { CreationDateTime: s.created, StartDateTime: s.started, EndDateTime: s.ended },
      },
    };
  }

  private listSteps(input: Json): Json {
    const cluster = this.cluster(input.ClusterId);
    const states = input.StepStates as string[] | undefined;
    const ids = input.StepIds as string[] | undefined;
    const all = [...cluster.steps]
      .reverse() // newest first, as EMR lists them
      .filter((s) => (!states?.length || states.includes(s.state)) && (!ids?.length || ids.includes(s.id)));
    const start = Number(input.Marker ?? 0);
    return {
      Steps: all.slice(start, start + PAGE_SIZE).map((s) => this.stepView(s)),
      Marker: start + PAGE_SIZE < all.length ? String(start + PAGE_SIZE) : undefined,
    };
  }

  private cancelSteps(input: Json): Json {
    const cluster = this.cluster(input.ClusterId);
    const ids = (input.StepIds as string[] | undefined) ?? [];
    return {
      CancelStepsInfoList: ids.map((id) => {
        const step = cluster.steps.find((s) => s.id === id);
        if (!step) return { StepId: id, Status: 'FAILED', Reason: `Step id '${id}' is not valid.` };
        if (step.state === 'PENDING') {
          this.endStep(step, 'CANCELLED', { Message: 'Cancelled by user request' });
          return { StepId: id, Status: 'SUBMITTED' };
        }
        if (step.state === 'RUNNING' && step.pgid) {
          step.state = 'CANCEL_PENDING';
          step.stopAs = 'CANCELLED';
          this.track(stopGroup(step.pgid));
          return { StepId: id, Status: 'SUBMITTED' };
        }
        return { StepId: id, Status: 'FAILED', Reason: `Step ${id} is ${step.state}; only PENDING or RUNNING steps can be cancelled.` };
      }),
    };
  }

  private endStep(step: StepRecord, state: string, reason?: { Code?: string; Message?: string }): void {
    step.state = state;
    step.reason = reason;
    step.ended = now();
    step.pgid = undefined;
  }

  private track(p: Promise<unknown>): void {
    const done = p.then(() => undefined, () => undefined);
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
  }

  /** Starts the cluster's next pending step if none is running. */
  private pump(cluster: ClusterRecord): void {
    if (!['WAITING', 'RUNNING'].includes(cluster.state)) return;
    if (cluster.steps.some((s) => s.state === 'RUNNING' || s.state === 'CANCEL_PENDING')) return;
    const next = cluster.steps.find((s) => s.state === 'PENDING');
    if (!next) {
      cluster.state = 'WAITING';
      if (!cluster.keepAlive) this.terminate(cluster, { Code: 'ALL_STEPS_COMPLETED', Message: 'Steps completed' });
      return;
    }
    cluster.state = 'RUNNING';
    next.state = 'RUNNING';
    next.started = now();
    this.track(this.execute(cluster, next));
  }

  /** Runs a step on local Spark, uploads its logs, then makes its final state visible. */
  private async execute(cluster: ClusterRecord, step: StepRecord): Promise<void> {
    const stdout = new TailBuffer(LOG_CAP_BYTES);
    const stderr = new TailBuffer(LOG_CAP_BYTES);
    let code: number | null = null;
    if (step.jar !== 'command-runner.jar' || step.args.length === 0) {
      stderr.push(Buffer.from(`the test server runs only command-runner.jar steps with a command, not ${step.jar} ${JSON.stringify(step.args)}\n`));
      code = 1;
    } else {
      // command-runner.jar runs any command; spark-submit is translated for local Spark.
      const { command, args } = step.args[0] === 'spark-submit'
        ? this.sparkSubmit(cluster, step)
        : { command: step.args[0]!, args: step.args.slice(1) };
      const child = spawn(command, args, {
        detached: true, // its own process group, so cancelling stops spark-submit and its JVM together
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          PYSPARK_PYTHON: join(this.settings.spark.venv!, 'bin', 'python'),
          SPARK_LOCAL_IP: '127.0.0.1',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
      });
      step.pgid = child.pid;
      child.stdout.on('data', (c: Buffer) => stdout.push(c));
      child.stderr.on('data', (c: Buffer) => stderr.push(c));
      code = await new Promise<number | null>((resolve) => {
        child.on('error', (err) => {
          stderr.push(Buffer.from(`command-runner: ${String(err)}\n`));
          resolve(1);
        });
        child.on('close', (c) => resolve(c));
      });
      // A cancelled step is final only once every process of its group is gone.
      if (step.stopAs && child.pid) await stopGroup(child.pid);
    }

    const stderrBytes = stderr.toBuffer();
    const logFile = cluster.logUri ? await this.uploadLogs(cluster, step, stdout.toBuffer(), stderrBytes) : undefined;
    if (step.stopAs) {
      this.endStep(step, step.stopAs, { Message: step.stopAs === 'CANCELLED' ? 'Cancelled by user request' : 'Interrupted: the cluster terminated' });
    } else if (code === 0) {
      this.endStep(step, 'COMPLETED');
    } else {
      this.endStep(step, 'FAILED');
      step.failureDetails = { Reason: 'Unknown Error.', Message: lastErrorLine(stderrBytes.toString('utf8')), LogFile: logFile };
      if (step.actionOnFailure === 'CANCEL_AND_WAIT') {
        for (const s of cluster.steps) if (s.state === 'PENDING') this.endStep(s, 'CANCELLED', { Message: 'Cancelled: an earlier step failed' });
      } else if (step.actionOnFailure === 'TERMINATE_CLUSTER' || step.actionOnFailure === 'TERMINATE_JOB_FLOW') {
        this.terminate(cluster, { Code: 'STEP_FAILURE', Message: `Shut down as step failed` }, 'TERMINATED_WITH_ERRORS');
      }
    }
    this.pump(cluster);
  }

  /**
   * The local spark-submit for a step: the cluster's `spark-defaults` first, as EMR writes them to
   * spark-defaults.conf (so the step's own --conf wins), then the local runner's translation.
   */
  private sparkSubmit(cluster: ClusterRecord, step: StepRecord): { command: string; args: string[] } {
    const local = toLocalCommand({ name: step.name, actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: step.args } }, this.settings);
    const defaults = cluster.configurations
      .filter((c) => c.Classification === 'spark-defaults')
      .flatMap((c) => Object.entries(c.Properties ?? {}))
      .flatMap(([k, v]) => ['--conf', `${k}=${v}`]);
    return { command: local.command, args: [...defaults, ...local.args] };
  }

  /** Uploads `stdout.gz` and `stderr.gz` where EMR puts step logs; returns the stderr URI. */
  private async uploadLogs(cluster: ClusterRecord, step: StepRecord, stdout: Buffer, stderr: Buffer): Promise<string | undefined> {
    const m = /^s3[an]?:\/\/([^/]+)\/?(.*)$/.exec(cluster.logUri!);
    if (!m) return undefined;
    const bucket = m[1]!;
    const folder = `${m[2]!.replace(/\/+$/, '')}/${cluster.id}/steps/${step.id}/`.replace(/^\//, '');
    try {
      for (const [name, body] of [['stdout.gz', stdout], ['stderr.gz', stderr]] as const) {
        await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: folder + name, Body: gzipSync(body), ContentType: 'application/gzip' }));
      }
    } catch (err) {
      this.logUploadErrors.push(err);
    }
    return `s3://${bucket}/${folder}stderr.gz`;
  }
}

/** The line EMR's failure analysis would most likely pick: the last one naming an error or exception. */
function lastErrorLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return [...lines].reverse().find((l) => /error|exception/i.test(l))?.slice(0, 1_000) ?? lines.at(-1)?.slice(0, 1_000);
}
