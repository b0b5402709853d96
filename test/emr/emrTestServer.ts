/**
 * A small EMR API server for tests: EMR's JSON 1.1 protocol on 127.0.0.1 (POST /, `X-Amz-Target:
 * ElasticMapReduce.<Operation>`), with clusters and steps kept in memory and every step executed
 * for real on local Spark, translated by the local runner's `toLocalCommand`.
 *
 * Operations: RunJobFlow, DescribeCluster, ListClusters, TerminateJobFlows, ModifyCluster,
 * AddJobFlowSteps, DescribeStep, ListSteps, CancelSteps.
 *
 * Where it is as strict as EMR (each a way a run that passes here could still fail on EMR before):
 * - Requests must be SigV4-signed for this server's region and the `elasticmapreduce` service with
 *   the credentials it was given; otherwise EMR's `InvalidSignatureException` (403).
 * - A release label must be one EMR has; steps on a release whose Spark the jobs cannot run (the
 *   `emr-7.x` line: Spark 3.5, Python 3.9) fail as they would there.
 * - Bootstrap actions are fetched from S3 (missing → BOOTSTRAP_FAILURE), syntax-checked with
 *   `bash -n`, and every `s3://` argument must exist. A spark-submit step's Python is what
 *   `spark.pyspark.python` says: unset is the node's system Python, which lacks the jobs'
 *   dependencies, and a path is usable only inside a folder a bootstrap action built (it is mapped
 *   to the stack's venv here).
 * - `StepConcurrencyLevel` (RunJobFlow, ModifyCluster; 1–256) bounds the steps RUNNING at once;
 *   above 1, AddJobFlowSteps refuses any `ActionOnFailure` but CONTINUE, with EMR's
 *   ValidationException.
 * - `--deploy-mode cluster`: the application runs as its own process tree, like a YARN application,
 *   and the step's process is only its client. CancelSteps kills the client: the application runs
 *   on, and keeps writing, unless someone kills it. Its driver's output goes to the container logs
 *   (`<LogUri>/<clusterId>/containers/<appId>/container_…_01_000001/`), the step's stderr holds the
 *   client's report. In client deploy mode the driver is the step's child and dies with it.
 * - Step logs reach S3 `logDelayMs` after the step's final state is visible (EMR: minutes).
 *
 * How it differs from EMR, on purpose:
 * - Clusters go STARTING → BOOTSTRAPPING → WAITING in `clusterStartupMs` (default 300 ms); bootstrap
 *   scripts are checked, not executed (they would pip-install on this machine).
 * - Only `command-runner.jar` steps are supported: `spark-submit` is translated for local Spark, any
 *   other command runs as given (tests use `bash -c` to fake what EMR would log).
 * - CancelSteps on a RUNNING step kills its process group (SIGTERM, SIGKILL after 3 s) and marks it
 *   CANCELLED once the group is gone.
 * - Terminating a cluster CANCELs its pending steps and INTERRUPTs the running ones (and kills its
 *   applications, as the YARN nodes go away).
 * - Of RunJobFlow's Configurations only `spark-defaults` has an effect (as --conf on each spark-submit).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { toLocalCommand } from '../../src/activities/localSparkRunner';
import { createS3Client } from '../../src/activities/s3Client';
import { loadSettings, type Settings } from '../../src/settings';
import { shortLivedSubmitOpts } from '../helpers/shortLivedJvm';

export type EmrOperation =
  | 'RunJobFlow' | 'DescribeCluster' | 'ListClusters' | 'TerminateJobFlows' | 'ModifyCluster'
  | 'AddJobFlowSteps' | 'DescribeStep' | 'ListSteps' | 'CancelSteps';

/**
 * Release labels the server knows, with the Spark and Python their nodes have (AWS's release
 * guide). A label not listed is refused as EMR refuses an unknown one.
 */
export const RELEASES: Record<string, { spark: string; python: string }> = {
  'emr-spark-8.1.0': { spark: '4.1.1', python: '3.11' },
  'emr-spark-8.0.0': { spark: '4.0.1', python: '3.11' },
  'emr-7.12.0': { spark: '3.5.6', python: '3.9' },
  'emr-7.13.0': { spark: '3.5.6', python: '3.9' },
};

/** A YARN application of a cluster-mode step: its own process tree, outliving a killed client. */
export interface YarnApplication {
  id: string;
  clusterId: string;
  stepId: string;
  pgid: number;
  state: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';
}

/** A transient fault the next calls of an operation answer with. */
export type FaultKind = 'InternalServerError' | 'ThrottlingException' | 'ConnectionReset';

export interface RecordedCall {
  operation: string;
  input: Record<string, unknown>;
  /** The fault answered instead of the operation, if any. */
  fault?: FaultKind;
  /** The error type when the request's signature was refused. */
  refused?: string;
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
  /** The process group of the step's own process (in cluster deploy mode: the YARN client only). */
  pgid?: number;
  /** Why the step is being stopped, if it is: the final state it gets once its processes are gone. */
  stopAs?: 'CANCELLED' | 'INTERRUPTED';
  /** In cluster deploy mode: resolves when the client is killed (the application runs on). */
  killClient?: () => void;
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
  bootstrapActions: { Name?: string; ScriptBootstrapAction?: { Path?: string; Args?: string[] } }[];
  /** Folders the bootstrap actions built on every node (their absolute-path arguments). */
  nodeDirs: string[];
  stepConcurrencyLevel: number;
  /** The most steps that were RUNNING at once. */
  maxRunningSteps: number;
  instances: Json;
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
const FAILED_ACTION_ON_FAILURE = new Set(['TERMINATE_CLUSTER', 'TERMINATE_JOB_FLOW', 'CANCEL_AND_WAIT']);

/** Node's crypto as the Checksum SignatureV4 wants (HMAC when constructed with a secret). */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData): string | Buffer =>
  typeof d === 'string' ? d : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
class Sha256 {
  private readonly h;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {
    throw new Error('not supported');
  }
}
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
  /** The region requests must be signed for; the settings' EMR region by default. */
  region?: string;
  /** The only credentials whose signatures are accepted; the environment's AWS keys by default. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** The test server; `start()` listens on an ephemeral port of 127.0.0.1. */
export class EmrTestServer {
  /** Every request, in order (faulted ones included), for tests to assert on. */
  readonly calls: RecordedCall[] = [];
  /** How long a new cluster takes from STARTING to WAITING. */
  clusterStartupMs = 300;
  /** How long after a step's final state its logs reach S3 (EMR: up to ~5 min); Infinity: never. */
  logDelayMs = 1_000;
  /** `logDelayMs` for the clusters of one LogUri: a late-logs run can go beside on-time ones. */
  readonly logDelayMsByLogUri = new Map<string, number>();
  /** Every YARN application a cluster-mode step submitted, by id. */
  readonly applications = new Map<string, YarnApplication>();
  readonly region: string;
  private readonly credentials: { accessKeyId: string; secretAccessKey: string };
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
    this.region = opts.region ?? this.settings.emr.region;
    const accessKeyId = opts.credentials?.accessKeyId ?? process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = opts.credentials?.secretAccessKey ?? process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) throw new Error('the EMR test server needs credentials to check signatures: pass them or set the AWS keys');
    this.credentials = { accessKeyId, secretAccessKey };
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

  /** What the tests look at of a cluster, read directly (no call recorded). */
  clusterFacts(clusterId: string): Pick<ClusterRecord, 'stepConcurrencyLevel' | 'maxRunningSteps' | 'nodeDirs' | 'configurations' | 'bootstrapActions' | 'instances' | 'tags' | 'state'> | undefined {
    return this.clusters.get(clusterId);
  }

  /** Kills a YARN application (`yarn application -kill`), as an operator would. */
  async killApplication(appId: string): Promise<void> {
    const app = this.applications.get(appId);
    if (!app || app.state !== 'RUNNING') return;
    app.state = 'KILLED';
    await stopGroup(app.pgid);
  }

  private async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const cluster of this.clusters.values()) {
      for (const step of cluster.steps) if (step.state === 'RUNNING' && step.pgid) step.stopAs ??= 'INTERRUPTED';
      for (const step of cluster.steps) if (step.pgid) signalGroup(step.pgid, 'SIGKILL');
    }
    for (const app of this.applications.values()) if (app.state === 'RUNNING') signalGroup(app.pgid, 'SIGKILL');
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
    const refused = await this.checkSignature(req, Buffer.concat(chunks));
    if (refused) {
      this.calls.push({ operation, input, refused: refused.type });
      return this.reply(res, 400, { __type: refused.type, message: refused.message });
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

  /**
   * Checks the request's SigV4 signature as EMR does: scoped to this server's region and the
   * `elasticmapreduce` service, by the one known access key, over the headers it names and the body.
   * Returns EMR's error for a refused request.
   */
  private async checkSignature(req: IncomingMessage, body: Buffer): Promise<{ type: string; message: string } | undefined> {
    const auth = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
    const [, accessKeyId, , region, service, signedHeaders, signature] = m as unknown as string[];
    if (accessKeyId !== this.credentials.accessKeyId) {
      return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
    }
    if (region !== this.region) return { type: 'InvalidSignatureException', message: `Credential should be scoped to a valid region, not '${region}'. ` };
    if (service !== 'elasticmapreduce') {
      return { type: 'InvalidSignatureException', message: `Credential should be scoped to correct service: 'elasticmapreduce'. ` };
    }
    const headers: Record<string, string> = {};
    for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '');
    const d = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(headers['x-amz-date'] ?? '');
    if (!d) return { type: 'IncompleteSignatureException', message: 'the signed headers must include X-Amz-Date' };
    const signingDate = new Date(`${d[1]}-${d[2]}-${d[3]}T${d[4]}:${d[5]}:${d[6]}Z`);
    const signer = new SignatureV4({ credentials: this.credentials, region: this.region, service: 'elasticmapreduce', sha256: Sha256 });
    const [hostname, port] = (headers.host ?? '').split(':');
    const url = new URL(req.url ?? '/', 'http://x');
    const signed = await signer.sign(
      {
        method: req.method ?? 'POST', protocol: 'http:', hostname: hostname!, port: port ? Number(port) : undefined,
        path: url.pathname, query: Object.fromEntries(url.searchParams), headers, body: body.toString('utf8'),
      },
      { signingDate },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
    if (expected !== signature) {
      return {
        type: 'InvalidSignatureException',
        message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      };
    }
    return undefined;
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
    ModifyCluster: (input) => {
      const cluster = this.cluster(input.ClusterId);
      if (input.StepConcurrencyLevel !== undefined) {
        cluster.stepConcurrencyLevel = this.concurrencyLevel(input.StepConcurrencyLevel);
        this.pump(cluster);
      }
      return { StepConcurrencyLevel: cluster.stepConcurrencyLevel };
    },
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
    const releaseLabel = input.ReleaseLabel as string | undefined;
    if (!releaseLabel) throw new EmrError('ValidationException', 'ReleaseLabel is required (AmiVersion is not supported for this release).');
    if (!RELEASES[releaseLabel]) throw new EmrError('ValidationException', `The requested release label ${releaseLabel} is not valid.`);
    const stepConcurrencyLevel = this.concurrencyLevel(input.StepConcurrencyLevel ?? 1);
    const cluster: ClusterRecord = {
      id: newId('j-'),
      name: input.Name,
      state: 'STARTING',
      created: now(),
      logUri: input.LogUri as string | undefined,
      releaseLabel,
      applications: (input.Applications as { Name?: string }[] | undefined) ?? [],
      tags: (input.Tags as { Key?: string; Value?: string }[] | undefined) ?? [],
      serviceRole: input.ServiceRole as string | undefined,
      jobFlowRole: input.JobFlowRole as string | undefined,
      subnetId: instances.Ec2SubnetId as string | undefined,
      configurations: (input.Configurations as ClusterRecord['configurations'] | undefined) ?? [],
      bootstrapActions: (input.BootstrapActions as ClusterRecord['bootstrapActions'] | undefined) ?? [],
      nodeDirs: [],
      stepConcurrencyLevel,
      maxRunningSteps: 0,
      instances,
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
      const bootstrapped = this.bootstrap(cluster);
      this.track(bootstrapped);
      this.later(this.clusterStartupMs / 2, () => {
        void bootstrapped.then((failure) => {
          if (cluster.state !== 'BOOTSTRAPPING') return;
          if (failure) return this.terminate(cluster, { Code: 'BOOTSTRAP_FAILURE', Message: failure }, 'TERMINATED_WITH_ERRORS');
          cluster.state = 'WAITING';
          cluster.ready = now();
          cluster.reason = { Code: undefined, Message: 'Cluster ready to run steps.' };
          this.pump(cluster);
        });
      });
    });
    return { JobFlowId: cluster.id, ClusterArn: this.arn(cluster) };
  }

  private concurrencyLevel(value: unknown): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 256) {
      throw new EmrError('ValidationException', `StepConcurrencyLevel must be between 1 and 256, not ${String(value)}.`);
    }
    return value;
  }

  /**
   * What EMR's bootstrap would find wrong: a script that cannot be downloaded or parsed, or an
   * `s3://` argument that does not exist (the script's own `aws s3 cp` would fail). Absolute-path
   * arguments of the actions that pass are taken as folders they built on every node.
   */
  private async bootstrap(cluster: ClusterRecord): Promise<string | undefined> {
    for (const [i, action] of cluster.bootstrapActions.entries()) {
      const n = i + 1;
      const path = action.ScriptBootstrapAction?.Path ?? '';
      const args = action.ScriptBootstrapAction?.Args ?? [];
      const loc = /^s3:\/\/([^/]+)\/(.+)$/.exec(path);
      if (!loc) return `bootstrap action ${n} has no s3:// path: ${path}`;
      let script: string;
      try {
        const got = await this.s3.send(new GetObjectCommand({ Bucket: loc[1], Key: loc[2] }));
        script = await got.Body!.transformToString();
      } catch {
        return `Master instance (i-0test) failed attempting to download bootstrap action ${n} file from S3`;
      }
      const syntax = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
      if (syntax.status !== 0) return `bootstrap action ${n} returned a non-zero return code`;
      for (const arg of args.filter((a) => a.startsWith('s3://'))) {
        const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(arg);
        try {
          await this.s3.send(new HeadObjectCommand({ Bucket: m?.[1], Key: m?.[2] }));
        } catch {
          return `bootstrap action ${n} returned a non-zero return code`;
        }
      }
      cluster.nodeDirs.push(...args.filter((a) => a.startsWith('/')));
    }
    return undefined;
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
      Applications: c.applications.map((a) => ({ Name: a.Name, Version: a.Name === 'Spark' ? RELEASES[c.releaseLabel!]?.spark : undefined })),
      Tags: c.tags,
      Configurations: c.configurations,
      ServiceRole: c.serviceRole,
      NormalizedInstanceHours: 0,
      ClusterArn: this.arn(c),
      StepConcurrencyLevel: c.stepConcurrencyLevel,
      BootstrapActions: c.bootstrapActions,
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
    const finish = () => {
      c.state = finalState;
      c.ended = now();
    };
    // The nodes go away: every step process and every YARN application of the cluster with them.
    const stopping: Promise<void>[] = [];
    for (const step of c.steps.filter((s) => s.state === 'RUNNING' || s.state === 'CANCEL_PENDING')) {
      step.stopAs ??= 'INTERRUPTED';
      if (step.pgid) stopping.push(stopGroup(step.pgid));
      step.killClient?.();
    }
    for (const app of this.applications.values()) {
      if (app.clusterId === c.id && app.state === 'RUNNING') stopping.push(this.killApplication(app.id));
    }
    if (stopping.length > 0) this.track(Promise.all(stopping).then(() => this.later(100, finish)));
    else this.later(Math.min(this.clusterStartupMs, 200), finish);
  }

  // --- steps ----------------------------------------------------------------------------------

  private step(cluster: ClusterRecord, id: unknown): StepRecord {
    const s = cluster.steps.find((x) => x.id === id);
    if (!s) throw new EmrError('InvalidRequestException', `Step id '${String(id)}' is not valid.`);
    return s;
  }

  private addSteps(cluster: ClusterRecord, steps: Json[]): string[] {
    for (const cfg of steps) {
      const action = (cfg.ActionOnFailure as string | undefined) ?? 'TERMINATE_CLUSTER';
      if (cluster.stepConcurrencyLevel > 1 && FAILED_ACTION_ON_FAILURE.has(action)) {
        throw new EmrError('ValidationException', `ActionOnFailure ${action} is not valid for a cluster whose StepConcurrencyLevel is ${cluster.stepConcurrencyLevel}: only CONTINUE is.`);
      }
    }
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
        if (step.state === 'RUNNING' && (step.pgid || step.killClient)) {
          step.state = 'CANCEL_PENDING';
          step.stopAs = 'CANCELLED';
          // SEND_INTERRUPT stops the step's own process: in cluster mode only the YARN client.
          if (step.pgid) this.track(stopGroup(step.pgid));
          step.killClient?.();
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
    step.killClient = undefined;
  }

  private track(p: Promise<unknown>): void {
    const done = p.then(() => undefined, () => undefined);
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
  }

  /** Starts pending steps, in order, while fewer than the cluster's StepConcurrencyLevel run. */
  private pump(cluster: ClusterRecord): void {
    if (!['WAITING', 'RUNNING'].includes(cluster.state)) return;
    const active = () => cluster.steps.filter((s) => s.state === 'RUNNING' || s.state === 'CANCEL_PENDING').length;
    for (;;) {
      const next = cluster.steps.find((s) => s.state === 'PENDING');
      if (!next || active() >= cluster.stepConcurrencyLevel) break;
      cluster.state = 'RUNNING';
      next.state = 'RUNNING';
      next.started = now();
      cluster.maxRunningSteps = Math.max(cluster.maxRunningSteps, active());
      this.track(this.execute(cluster, next));
    }
    if (active() === 0 && !cluster.steps.some((s) => s.state === 'PENDING')) {
      cluster.state = 'WAITING';
      if (!cluster.keepAlive) this.terminate(cluster, { Code: 'ALL_STEPS_COMPLETED', Message: 'Steps completed' });
    }
  }

  /** Runs a step's command in its own process group; resolves with its exit code. */
  private runProcess(
    command: string, args: string[], env: NodeJS.ProcessEnv, out: TailBuffer, err: TailBuffer, onStart: (pid: number | undefined) => void,
  ): Promise<number | null> {
    const child = spawn(command, args, {
      detached: true, // its own process group, so stopping it stops spark-submit and its JVM together
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SPARK_LOCAL_IP: '127.0.0.1', AWS_EC2_METADATA_DISABLED: 'true', ...env },
    });
    onStart(child.pid);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    return new Promise<number | null>((resolve) => {
      child.on('error', (e) => {
        err.push(Buffer.from(`command-runner: ${String(e)}\n`));
        resolve(1);
      });
      child.on('close', (c) => resolve(c));
    });
  }

  /** Runs a step, makes its final state visible, then (after `logDelayMs`) uploads its logs. */
  private async execute(cluster: ClusterRecord, step: StepRecord): Promise<void> {
    const stdout = new TailBuffer(LOG_CAP_BYTES);
    const stderr = new TailBuffer(LOG_CAP_BYTES);
    let code: number | null = null;
    if (step.jar !== 'command-runner.jar' || step.args.length === 0) {
      stderr.push(Buffer.from(`the test server runs only command-runner.jar steps with a command, not ${step.jar} ${JSON.stringify(step.args)}\n`));
      code = 1;
    } else if (step.args[0] === 'spark-submit') {
      code = await this.sparkSubmit(cluster, step, stdout, stderr);
    } else {
      // command-runner.jar runs any command as given.
      code = await this.runProcess(step.args[0]!, step.args.slice(1), {}, stdout, stderr, (pid) => (step.pgid = pid));
      // A cancelled step is final only once every process of its group is gone.
      if (step.stopAs && step.pgid) await stopGroup(step.pgid);
    }

    const stderrBytes = stderr.toBuffer();
    const logFile = this.stepLogUri(cluster, step, 'stderr.gz');
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
    this.uploadLater(cluster, `${cluster.id}/steps/${step.id}/`, stdout.toBuffer(), stderrBytes);
  }

  /**
   * Runs a spark-submit step as EMR would on this cluster: refused up front where the release's
   * Spark or the configured Python cannot run the jobs; else on local Spark, in client deploy mode
   * as the step's own process tree, in cluster deploy mode as a YARN application the step's client
   * merely waits for.
   */
  private async sparkSubmit(cluster: ClusterRecord, step: StepRecord, stdout: TailBuffer, stderr: TailBuffer): Promise<number | null> {
    const release = RELEASES[cluster.releaseLabel!]!;
    if (!release.spark.startsWith('4.')) {
      stderr.push(Buffer.from(
        `Traceback (most recent call last):\n  File "job.py", line 1, in <module>\nImportError: the jobs need Spark 4 and Python >= 3.11; ` +
        `${cluster.releaseLabel} has Spark ${release.spark} and Python ${release.python} (EMR test server)\n`,
      ));
      return 1;
    }
    const conf = this.sparkDefaults(cluster);
    for (let i = 0; i < step.args.length - 1; i++) {
      if (step.args[i] === '--conf') {
        const [k, ...v] = step.args[i + 1]!.split('=');
        conf[k!] = v.join('=');
      }
    }
    const python = conf['spark.pyspark.python'];
    if (!python || !cluster.nodeDirs.some((d) => python.startsWith(`${d.replace(/\/+$/, '')}/`))) {
      const why = python
        ? `${python} does not exist on the nodes (no bootstrap action built it)`
        : "spark.pyspark.python is not set, so the node's system Python runs the job, without the jobs' dependencies";
      stdout.push(Buffer.from(`Traceback (most recent call last):\n  File "job.py", line 1, in <module>\nModuleNotFoundError: No module named 'jsonschema' (EMR test server: ${why})\n`));
      stderr.push(Buffer.from(`Exception in thread "main" org.apache.spark.SparkUserAppException: User application exited with 1\n`));
      return 1;
    }
    const local = toLocalCommand({ name: step.name, actionOnFailure: 'CONTINUE', hadoopJarStep: { jar: 'command-runner.jar', args: step.args } }, this.settings);
    // The local translation's own settings (master, s3a, this machine's defaults), then the
    // cluster's spark-defaults over them, then the step's arguments, whose --conf wins, as on EMR.
    // Python is the stack's venv, standing in for the one the bootstrap built on the nodes.
    const defaults = Object.entries(this.sparkDefaults(cluster))
      .filter(([k]) => !k.startsWith('spark.pyspark.'))
      .flatMap(([k, v]) => ['--conf', `${k}=${v}`]);
    const stepArgCount = step.args.length - 1 - (step.args.includes('--deploy-mode') ? 2 : 0);
    const split = local.args.length - stepArgCount;
    const args = [...local.args.slice(0, split), ...defaults, ...local.args.slice(split)].map((a) => (/^spark\.pyspark\.(driver\.)?python=/.test(a) ? `${a.split('=')[0]}=${this.localPython()}` : a));
    // Each step is a fresh JVM that runs seconds of test-sized work: the stand-in nodes' JVMs stop at C1.
    const env = { PYSPARK_PYTHON: this.localPython(), SPARK_SUBMIT_OPTS: shortLivedSubmitOpts() };
    const mode = step.args[step.args.indexOf('--deploy-mode') + 1];
    if (step.args.includes('--deploy-mode') && mode === 'cluster') return this.yarnApplication(cluster, step, local.command, args, env, stderr);
    const code = await this.runProcess(local.command, args, env, stdout, stderr, (pid) => (step.pgid = pid));
    if (step.stopAs && step.pgid) await stopGroup(step.pgid);
    return code;
  }

  private localPython(): string {
    return join(this.settings.spark.venv!, 'bin', 'python');
  }

  private sparkDefaults(cluster: ClusterRecord): Record<string, string> {
    return Object.assign({}, ...cluster.configurations.filter((c) => c.Classification === 'spark-defaults').map((c) => c.Properties ?? {})) as Record<string, string>;
  }

  /**
   * Cluster deploy mode: the job runs as a YARN application in its own process group (its driver's
   * output becomes the driver container's logs); the step is the client that reports on it. Killing
   * the client (CancelSteps) ends the step, not the application.
   */
  private async yarnApplication(
    cluster: ClusterRecord, step: StepRecord, command: string, args: string[], env: NodeJS.ProcessEnv, clientErr: TailBuffer,
  ): Promise<number | null> {
    const id = `application_${Date.now()}_${String(this.applications.size + 1).padStart(4, '0')}`;
    const app: YarnApplication = { id, clusterId: cluster.id, stepId: step.id, pgid: 0, state: 'RUNNING' };
    const out = new TailBuffer(LOG_CAP_BYTES);
    const err = new TailBuffer(LOG_CAP_BYTES);
    const exited = this.runProcess(command, args, env, out, err, (pid) => (app.pgid = pid ?? 0));
    this.applications.set(id, app);
    clientErr.push(Buffer.from(`INFO Client: Submitted application ${id}\n`));
    const finished = exited.then((code) => {
      if (app.state === 'RUNNING') app.state = code === 0 ? 'FINISHED' : 'FAILED';
      this.uploadLater(cluster, `${cluster.id}/containers/${id}/container_${id.slice('application_'.length)}_01_000001/`, out.toBuffer(), err.toBuffer());
      return code;
    });
    this.track(finished);
    const clientKilled = new Promise<'killed'>((resolve) => (step.killClient = () => resolve('killed')));
    const outcome = await Promise.race([finished, clientKilled]);
    if (outcome === 'killed') return 143;
    clientErr.push(Buffer.from(`INFO Client: Application report for ${id} (state: ${app.state})\n`));
    if (outcome !== 0) clientErr.push(Buffer.from(`Exception in thread "main" org.apache.spark.SparkException: Application ${id} finished with failed status\n`));
    return outcome;
  }

  /** `s3://…` of a step's log file, where EMR puts it (undefined without a LogUri). */
  private stepLogUri(cluster: ClusterRecord, step: StepRecord, name: string): string | undefined {
    const m = /^s3[an]?:\/\/([^/]+)\/?(.*)$/.exec(cluster.logUri ?? '');
    if (!m) return undefined;
    return `s3://${m[1]}/${`${m[2]!.replace(/\/+$/, '')}/${cluster.id}/steps/${step.id}/`.replace(/^\//, '')}${name}`;
  }

  /** Uploads `stdout.gz` and `stderr.gz` to `<LogUri>/<folder>` after `logDelayMs`, as EMR's log pusher would. */
  private uploadLater(cluster: ClusterRecord, folder: string, stdout: Buffer, stderr: Buffer): void {
    const m = /^s3[an]?:\/\/([^/]+)\/?(.*)$/.exec(cluster.logUri ?? '');
    const delayMs = this.logDelayMsByLogUri.get(cluster.logUri ?? '') ?? this.logDelayMs;
    if (!m || !Number.isFinite(delayMs)) return;
    const bucket = m[1]!;
    const key = `${m[2]!.replace(/\/+$/, '')}/${folder}`.replace(/^\//, '');
    this.later(delayMs, () => {
      this.track((async () => {
        try {
          for (const [name, body] of [['stdout.gz', stdout], ['stderr.gz', stderr]] as const) {
            await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key + name, Body: gzipSync(body), ContentType: 'application/gzip' }));
          }
        } catch (err) {
          this.logUploadErrors.push(err);
        }
      })());
    });
  }
}

/** The line EMR's failure analysis would most likely pick: the last one naming an error or exception. */
function lastErrorLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return [...lines].reverse().find((l) => /error|exception/i.test(l))?.slice(0, 1_000) ?? lines.at(-1)?.slice(0, 1_000);
}
