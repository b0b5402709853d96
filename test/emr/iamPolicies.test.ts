/**
 * The IAM documents in deploy/aws/ against the code: each parses as an IAM policy, the worker's
 * allows every EMR, S3 and IAM action the worker's code calls and nothing else, and no statement
 * reaches past lensflow's bucket prefix, its tagged clusters and its two roles. The actions called
 * are read from the source (every `new XCommand` of the AWS SDK), so a new call without a policy
 * change fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const deployDir = join(root, 'deploy', 'aws');

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Parses a policy document strictly: the fields IAM knows, of the types it takes. */
function parsePolicy(file: string): PolicyDocument {
  const doc = JSON.parse(readFileSync(join(deployDir, file), 'utf8')) as PolicyDocument;
  expect(Object.keys(doc).sort()).toEqual(['Statement', 'Version']);
  expect(doc.Version).toBe('2012-10-17');
  expect(Array.isArray(doc.Statement) && doc.Statement.length > 0).toBe(true);
  const sids = doc.Statement.map((s) => s.Sid);
  expect(new Set(sids).size).toBe(sids.length);
  for (const s of doc.Statement) {
    for (const key of Object.keys(s)) expect(['Sid', 'Effect', 'Action', 'Resource', 'Principal', 'Condition']).toContain(key);
    expect(['Allow', 'Deny']).toContain(s.Effect);
    for (const a of list(s.Action)) expect(a).toMatch(/^[a-z0-9-]+:[A-Za-z0-9]+$/); // no wildcards at all
    if (s.Sid !== undefined) expect(s.Sid).toMatch(/^[A-Za-z0-9]+$/);
  }
  return doc;
}

const files = readdirSync(deployDir).filter((f) => f.endsWith('.json')).sort();
const policies = Object.fromEntries(files.map((f) => [f, parsePolicy(f)]));
const isTrust = (f: string) => f.endsWith('-trust.json');

/** SDK command → the IAM action that authorizes it (S3's names differ from its operations). */
const S3_ACTIONS: Record<string, string> = {
  GetObject: 's3:GetObject', HeadObject: 's3:GetObject', PutObject: 's3:PutObject', ListObjectsV2: 's3:ListBucket',
  DeleteObject: 's3:DeleteObject', CopyObject: 's3:PutObject',
};

/** Every AWS action the worker's code calls: `new XCommand` in files that import it from an AWS SDK client. */
function actionsCalled(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  for (const file of walk(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const [, op] of text.matchAll(/new (\w+)Command\(/g)) {
      if (new RegExp(`\\b${op}Command\\b[^;]*from '@aws-sdk/client-emr'`).test(text)) out.add(`elasticmapreduce:${op}`);
      else if (new RegExp(`\\b${op}Command\\b[^;]*from '@aws-sdk/client-s3'`).test(text)) {
        const action = S3_ACTIONS[op!];
        if (!action) throw new Error(`${file} calls S3 ${op}: add its IAM action to S3_ACTIONS and to deploy/aws/worker-policy.json`);
        out.add(action);
      }
    }
  }
  // RunJobFlow hands EMR the service role and the instance profile: the caller must be allowed to pass them.
  if (out.has('elasticmapreduce:RunJobFlow')) out.add('iam:PassRole');
  return out;
}

const TAG_CONDITIONS = ['elasticmapreduce:ResourceTag/lensflow:managed', 'elasticmapreduce:RequestTag/lensflow:managed'];
/** Actions with no resource-level permissions in IAM: `*` is the only resource they can name. */
const LIST_ONLY = new Set(['elasticmapreduce:ListClusters']);
const ROLES = new Set(['arn:aws:iam::AWS_ACCOUNT_ID:role/EMR_DefaultRole_V2', 'arn:aws:iam::AWS_ACCOUNT_ID:role/lensflow-emr-instance-profile']);

/** Why a statement's resources reach past lensflow's, if they do. */
function outsideLensflow(s: Statement): string | undefined {
  const tagged = TAG_CONDITIONS.some((k) => s.Condition?.StringEquals?.[k] === 'true');
  for (const r of list(s.Resource)) {
    if (r === '*') {
      if (list(s.Action).every((a) => LIST_ONLY.has(a))) continue;
      if (tagged && list(s.Action).every((a) => a.startsWith('elasticmapreduce:'))) continue;
      return `${s.Sid}: * for ${list(s.Action).join(', ')}`;
    }
    if (r === 'arn:aws:s3:::LENSFLOW_BUCKET') {
      const prefixes = list(s.Condition?.StringLike?.['s3:prefix']);
      if (prefixes.length === 0 || !prefixes.every((p) => p.startsWith('LENSFLOW_PREFIX/'))) return `${s.Sid}: listing the bucket beyond LENSFLOW_PREFIX/`;
      continue;
    }
    if (r.startsWith('arn:aws:s3:::LENSFLOW_BUCKET/LENSFLOW_PREFIX/')) continue;
    if (r === 'arn:aws:elasticmapreduce:AWS_REGION:AWS_ACCOUNT_ID:cluster/*' && tagged) continue;
    if (ROLES.has(r) && list(s.Action).every((a) => a === 'iam:PassRole')) continue;
    return `${s.Sid}: ${r}`;
  }
  return undefined;
}

test('deploy/aws holds the worker, EMR service role and instance profile documents, each a valid IAM policy', () => {
  expect(files).toEqual([
    'emr-service-role-policy.json', 'emr-service-role-trust.json', 'instance-profile-policy.json', 'instance-profile-trust.json', 'worker-policy.json',
  ]);
  for (const f of files.filter(isTrust)) {
    for (const s of policies[f]!.Statement) {
      expect(s).toMatchObject({ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: expect.stringMatching(/^(ec2|elasticmapreduce)\.amazonaws\.com$/) } });
      expect(s.Resource).toBeUndefined();
    }
  }
  for (const f of files.filter((x) => !isTrust(x))) for (const s of policies[f]!.Statement) expect(s.Principal).toBeUndefined();
});

test('the worker policy allows exactly the actions the code calls: every EMR, S3 and IAM action, nothing more', () => {
  const called = actionsCalled();
  // What the runner, the cluster activities and the S3 helpers call today; the scan must see them all.
  expect([...called].sort()).toEqual(expect.arrayContaining([
    'elasticmapreduce:AddJobFlowSteps', 'elasticmapreduce:CancelSteps', 'elasticmapreduce:DescribeCluster', 'elasticmapreduce:DescribeStep',
    'elasticmapreduce:ListClusters', 'elasticmapreduce:ListSteps', 'elasticmapreduce:ModifyCluster', 'elasticmapreduce:RunJobFlow',
    'elasticmapreduce:TerminateJobFlows', 'iam:PassRole', 's3:GetObject', 's3:ListBucket', 's3:PutObject',
  ]));
  const allowed = new Set(policies['worker-policy.json']!.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)));
  expect([...allowed].sort()).toEqual([...called].sort());
});

test('no statement reaches past lensflow: its bucket prefix, clusters tagged lensflow:managed=true, its two roles', () => {
  const broader = files.filter((f) => !isTrust(f)).flatMap((f) => policies[f]!.Statement.map(outsideLensflow).filter(Boolean).map((why) => `${f} ${why}`));
  expect(broader).toEqual([]);
  const passRole = policies['worker-policy.json']!.Statement.find((s) => list(s.Action).includes('iam:PassRole'))!;
  expect(new Set(list(passRole.Resource))).toEqual(ROLES);
  expect(passRole.Condition?.StringEquals?.['iam:PassedToService']).toEqual(['elasticmapreduce.amazonaws.com', 'ec2.amazonaws.com']);
});

test('the instance profile reads code/, raw/ and runs/, writes only runs/ (and the log prefix EMR pushes to)', () => {
  const statements = policies['instance-profile-policy.json']!.Statement;
  const on = (action: string) => statements.filter((s) => list(s.Action).includes(action)).flatMap((s) => list(s.Resource)).sort();
  const under = (...folders: string[]) => folders.map((f) => `arn:aws:s3:::LENSFLOW_BUCKET/LENSFLOW_PREFIX/${f}/*`).sort();
  expect(on('s3:GetObject')).toEqual(under('code', 'raw', 'runs'));
  expect(on('s3:PutObject')).toEqual(under('emr-logs', 'runs'));
  expect(on('s3:DeleteObject')).toEqual(under('runs'));
});
