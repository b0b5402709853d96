/**
 * Access to the local stack that `make test` starts (Temporal dev server, versitygw, worker),
 * configured from the environment `.lensflow/local.env` provides.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { loadSettings, type Settings } from '../../src/settings';

export function stackSettings(): Settings {
  const settings = loadSettings();
  if (!settings.s3.endpoint) {
    throw new Error('LENSFLOW_S3_ENDPOINT is unset: run the tests with `make test` (or `make up` and source .lensflow/local.env)');
  }
  return settings;
}

/** A fresh key prefix per test run, so suites never see each other's objects. */
export function uniquePrefix(label: string): string {
  return `test/${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Runs Python with boto3 from the project's venv: an S3 client independent of the AWS SDK for
 * JavaScript that the product itself uses. The script receives `s3` and prints JSON.
 */
export function boto3Json<T>(settings: Settings, script: string): T {
  const python = join(settings.spark.venv!, 'bin', 'python');
  const res = spawnSync(python, ['-c', `import boto3, json, sys\ns3 = boto3.client('s3', endpoint_url='${settings.s3.endpoint}')\n${script}`], {
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`boto3 script failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

/** Runs the `temporal` CLI from the project's venv against the stack's server. */
export function temporalCli(settings: Settings, args: string[]): string {
  const res = spawnSync(process.env.LENSFLOW_TEMPORAL_CLI ?? 'temporal', [...args, '--address', settings.temporal.address], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`temporal ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

/** Every object under `keyPrefix` with its ETag and modification time: compare two to see writes. */
export async function s3Snapshot(s3: S3Client, bucket: string, keyPrefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out[o.Key!] = `${o.ETag} ${o.LastModified?.toISOString()}`;
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

/** A stack service that `setup/stack.sh` started: its pid is in `<stateDir>/run/<name>.pid`. */
export type StackService = 'temporal' | 'versitygw' | 'worker' | 'spark-worker';

/** The pid of a running stack service (throws naming the service when it is not running). */
export function servicePid(settings: Settings, name: StackService): number {
  const pid = Number(readFileSync(join(settings.stateDir, 'run', `${name}.pid`), 'utf8'));
  if (!existsSync(`/proc/${pid}`)) throw new Error(`the stack's ${name} (pid ${pid}) is not running: start the stack with \`make up\``);
  return pid;
}

/**
 * SIGKILLs a stack service's process group (an outage, not a shutdown) and returns how to start it
 * again exactly as `stack.sh` did — same command, environment and folder, so Temporal reopens its
 * database and versitygw its folder — in a session of its own, with its pid file and log.
 */
export function killService(settings: Settings, name: 'temporal' | 'versitygw'): { restart(): void } {
  const pid = servicePid(settings, name);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const cwd = readlinkSync(`/proc/${pid}/cwd`);
  process.kill(-pid, 'SIGKILL');
  return {
    restart() {
      const log = openSync(join(settings.stateDir, 'logs', `${name}.log`), 'a');
      const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', log, log] });
      child.unref();
      closeSync(log);
      writeFileSync(join(settings.stateDir, 'run', `${name}.pid`), `${child.pid}\n`);
    },
  };
}

/** Whether a process is gone (a killed service's pid may linger a moment as a zombie of stack.sh's shell). */
export function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}
