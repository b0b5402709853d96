/**
 * Activity `stageDataset`: puts a MovieLens release under `s3://<bucket>/<prefix>/raw/<dataset>/`.
 *
 * Idempotent and non-destructive: each object carries its SHA-256 in metadata; the same content is
 * skipped, different content under an existing key is refused (never overwritten), and new objects
 * are written with `If-None-Match: *` so two concurrent stagers cannot clobber each other.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { StageDatasetInput, type StageDatasetResult } from '../contracts/stage';
import type { Settings } from '../settings';
import { DATASETS } from './datasetCatalog';
import { hashFile, resolveDataset } from './datasetSource';
import { isNotFound } from './s3Client';

const SHA_META = 'sha256';

/** Builds the activity over an S3 client and the worker's data settings. */
export function makeStageDataset(s3: S3Client, data: Settings['data']) {
  return async function stageDataset(rawInput: StageDatasetInput): Promise<StageDatasetResult> {
    const input = StageDatasetInput.parse(rawInput);
    const { dir, origin } = await resolveDataset(input.dataset, input.source, data);
    const folderKey = `${input.prefix}/raw/${input.dataset}/`;
    const files: StageDatasetResult['files'] = [];
    for (const name of DATASETS[input.dataset].files) {
      const path = join(dir, name);
      const key = folderKey + name;
      const [sha256, { size }] = await Promise.all([hashFile(path), stat(path)]);
      const action = await putIfAbsent(s3, input.bucket, key, path, size, sha256);
      files.push({ name, uri: `s3://${input.bucket}/${key}`, bytes: size, sha256, action });
    }
    const content = createHash('sha256');
    for (const f of files) content.update(`${f.name}\0${f.sha256}\n`);
    return { dataset: input.dataset, rawUri: `s3://${input.bucket}/${folderKey}`, origin, files, contentSha256: content.digest('hex') };
  };
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
  path: string,
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
        Body: createReadStream(path),
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
