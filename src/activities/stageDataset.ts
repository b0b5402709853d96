/**
 * Activity `stageDataset`: puts a MovieLens release under the content-addressed version
 * `s3://<bucket>/<prefix>/raw/<dataset>/<version>/`, where the version is the SHA-256 over the
 * files' names and checksums. A refreshed release (GroupLens regenerates ml-latest) is staged beside
 * the old one; a run reads exactly the version it staged, and the registry keys metrics by it.
 *
 * Every file is checked (`inputFiles`) before the first upload, so a defective release publishes
 * nothing. Idempotent and non-destructive: each object carries its SHA-256 in metadata; the same
 * content is skipped, different content under an existing key is refused (never overwritten), and
 * new objects are written with `If-None-Match: *` so two concurrent stagers cannot clobber each
 * other. `manifest.json` is written last: a version that has it is complete.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { DatasetName } from '../contracts/datasets';
import { StageDatasetInput, type StageDatasetResult, StagedVersion } from '../contracts/stage';
import type { Settings } from '../settings';
import { DATASETS } from './datasetCatalog';
import { resolveDataset } from './datasetSource';
import { inspectFile } from './inputFiles';
import { isNotFound } from './s3Client';

const SHA_META = 'sha256';

/** Builds the activity over an S3 client and the worker's data settings. */
export function makeStageDataset(s3: S3Client, data: Settings['data']) {
  return async function stageDataset(rawInput: StageDatasetInput): Promise<StageDatasetResult> {
    const input = StageDatasetInput.parse(rawInput);
    const { dir, origin } = await resolveDataset(input.dataset, input.source, data);
    const names = DATASETS[input.dataset].files;
    const inspected: { sha256: string; bytes: number }[] = [];
    for (const name of names) inspected.push(await inspectFile(input.dataset, name, join(dir, name), `${input.dataset}/${name} (${origin})`));
    const content = createHash('sha256');
    names.forEach((name, i) => content.update(`${name}\0${inspected[i]!.sha256}\n`));
    const version = content.digest('hex');
    const folderKey = `${stagedVersionsKey(input.prefix, input.dataset)}${version}/`;
    const files: StageDatasetResult['files'] = [];
    for (const [i, name] of names.entries()) {
      const key = folderKey + name;
      const { sha256, bytes } = inspected[i]!;
      const action = await putIfAbsent(s3, input.bucket, key, () => createReadStream(join(dir, name)), bytes, sha256);
      files.push({ name, uri: `s3://${input.bucket}/${key}`, bytes, sha256, action });
    }
    const rawUri = `s3://${input.bucket}/${folderKey}`;
    // Deterministic (no time, no origin), so re-staging the same version finds it unchanged.
    const manifest = Buffer.from(JSON.stringify(StagedVersion.parse({ dataset: input.dataset, version, rawUri, files: files.map(({ action: _, ...f }) => f) }), null, 2));
    const manifestSha = createHash('sha256').update(manifest).digest('hex');
    await putIfAbsent(s3, input.bucket, folderKey + MANIFEST, () => manifest, manifest.length, manifestSha);
    return { dataset: input.dataset, rawUri, origin, files, contentSha256: version };
  };
}

const MANIFEST = 'manifest.json';

/** A staged version as listed: its manifest and when it was staged. */
export type ListedVersion = StagedVersion & { stagedAt: string };

/** Key prefix under which a dataset's staged versions lie, one folder each. */
export function stagedVersionsKey(prefix: string, dataset: string): string {
  return `${prefix}/raw/${dataset}/`;
}

/** Every complete staged version of a dataset (those with a manifest), oldest first. */
export async function listStagedVersions(s3: S3Client, bucket: string, prefix: string, dataset: DatasetName): Promise<ListedVersion[]> {
  const versions: ListedVersion[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: stagedVersionsKey(prefix, dataset), Delimiter: '/', ContinuationToken: token }),
    );
    for (const { Prefix: folder } of page.CommonPrefixes ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${folder}${MANIFEST}` })).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!got) continue; // a version still being staged, or files from before versioning
      const manifest = StagedVersion.parse(JSON.parse(await got.Body!.transformToString('utf8')));
      versions.push({ ...manifest, stagedAt: (got.LastModified ?? new Date(0)).toISOString() });
    }
    token = page.NextContinuationToken;
  } while (token);
  return versions.sort((a, b) => a.stagedAt.localeCompare(b.stagedAt));
}

async function existingSha(s3: S3Client, bucket: string, key: string): Promise<string | null | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.Metadata?.[SHA_META] ?? null; // null: an object we did not stage
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function conflict(bucket: string, key: string, found: string | null, wanted: string): ApplicationFailure {
  const what = found ? `content with SHA-256 ${found}` : 'an object without a lensflow checksum';
  return ApplicationFailure.nonRetryable(
    `s3://${bucket}/${key} already holds ${what}, but the local file has SHA-256 ${wanted}. ` +
      'lensflow never overwrites staged data: stage under another prefix, or delete the old object if it is not needed.',
    'StagedContentConflict',
  );
}

async function putIfAbsent(
  s3: S3Client,
  bucket: string,
  key: string,
  body: () => Readable | Buffer,
  size: number,
  sha256: string,
): Promise<'uploaded' | 'unchanged'> {
  const found = await existingSha(s3, bucket, key);
  if (found === sha256) return 'unchanged';
  if (found !== undefined) throw conflict(bucket, key, found, sha256);
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body(),
        ContentLength: size,
        Metadata: { [SHA_META]: sha256 },
        IfNoneMatch: '*',
      }),
    );
    return 'uploaded';
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 412 && status !== 409) throw err;
    // Someone else wrote the key between our HEAD and PUT: accept it only if it is the same content.
    const now = await existingSha(s3, bucket, key);
    if (now === sha256) return 'unchanged';
    throw conflict(bucket, key, now ?? null, sha256);
  }
}
