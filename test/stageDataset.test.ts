/**
 * `stageDataset` against the real local S3 server: idempotent re-staging, refusal to overwrite
 * changed content, and the verified GroupLens download (served from loopback).
 */
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { DATASETS } from '../src/activities/datasetCatalog';
import { createS3Client } from '../src/activities/s3Client';
import { makeStageDataset } from '../src/activities/stageDataset';
import { boto3Json, stackSettings, uniquePrefix } from './helpers/stack';

const settings = stackSettings();
const s3 = createS3Client(settings.s3);
const shared = resolve(process.env.LENSFLOW_DATA_DIR ?? resolve(__dirname, '..', '..', 'shared', 'data', 'movielens'));
const bucket = settings.s3.bucket;

function objectsUnder(prefix: string): Record<string, { size: number; sha256: string }> {
  return boto3Json(settings, `
out = {}
for o in s3.list_objects_v2(Bucket='${bucket}', Prefix='${prefix}/').get('Contents', []):
    meta = s3.head_object(Bucket='${bucket}', Key=o['Key'])['Metadata']
    out[o['Key'][len('${prefix}/'):]] = {'size': o['Size'], 'sha256': meta.get('sha256', '')}
print(json.dumps(out))`);
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('stageDataset from a local folder', () => {
  const stage = makeStageDataset(s3, { ...settings.data, localDir: shared });

  it('uploads every file once, byte for byte, and nothing the second time', async () => {
    const prefix = uniquePrefix('stage');
    const first = await stage({ dataset: 'ml-latest-small', source: { kind: 'auto' }, bucket, prefix });
    expect(first.files.map((f) => f.action)).toEqual(DATASETS['ml-latest-small'].files.map(() => 'uploaded'));
    expect(first.rawUri).toBe(`s3://${bucket}/${prefix}/raw/ml-latest-small/`);

    const stored = objectsUnder(`${prefix}/raw/ml-latest-small`);
    expect(stored['ratings.csv']).toEqual({
      size: 2_483_723,
      sha256: 'aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646',
    });
    expect(Object.keys(stored).sort()).toEqual([...DATASETS['ml-latest-small'].files].sort());

    const second = await stage({ dataset: 'ml-latest-small', source: { kind: 'auto' }, bucket, prefix });
    expect(second.files.map((f) => f.action)).toEqual(DATASETS['ml-latest-small'].files.map(() => 'unchanged'));
  });

  it('refuses changed content under an existing key and leaves the object as it was', async () => {
    const prefix = uniquePrefix('stage-conflict');
    const dir = mkdtempSync(join(tmpdir(), 'lensflow-'));
    cpSync(join(shared, 'ml-latest-small'), join(dir, 'ml-latest-small'), { recursive: true });
    await stage({ dataset: 'ml-latest-small', source: { kind: 'local', dir }, bucket, prefix });
    const before = objectsUnder(`${prefix}/raw/ml-latest-small`)['ratings.csv'];

    appendFileSync(join(dir, 'ml-latest-small', 'ratings.csv'), '611,1,5.0,1537799250\r\n');
    const failure = await failureOf(stage({ dataset: 'ml-latest-small', source: { kind: 'local', dir }, bucket, prefix }));
    expect(failure.type).toBe('StagedContentConflict');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`s3://${bucket}/${prefix}/raw/ml-latest-small/ratings.csv already holds content with SHA-256 ${before!.sha256}`);
    expect(objectsUnder(`${prefix}/raw/ml-latest-small`)['ratings.csv']).toEqual(before);
  });

  it('names the missing files and the fix when a local folder is incomplete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lensflow-'));
    cpSync(join(shared, 'ml-100k'), join(dir, 'ml-100k'), { recursive: true });
    rmSync(join(dir, 'ml-100k', 'u.item'));
    const failure = await failureOf(stage({ dataset: 'ml-100k', source: { kind: 'local', dir }, bucket, prefix: uniquePrefix('x') }));
    expect(failure.type).toBe('DatasetNotFound');
    expect(failure.message).toMatch(/missing u\.item\. Point the data source \(or LENSFLOW_DATA_DIR\)/);
  });
});

describe('stageDataset from the GroupLens download', () => {
  let server: Server;
  let baseUrl: string;
  let body: Buffer = readFileSync(join(shared, 'ml-latest-small', 'ml-latest-small.zip'));
  let requests = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      if (req.url !== '/ml-latest-small.zip') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const downloader = (cacheDir: string, url = baseUrl) =>
    makeStageDataset(s3, { cacheDir, downloadBaseUrl: url, localDir: undefined });

  it('downloads once, verifies the published checksum, extracts and stages', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'lensflow-cache-'));
    const prefix = uniquePrefix('download');
    requests = 0;
    const staged = await downloader(cacheDir)({ dataset: 'ml-latest-small', source: { kind: 'grouplens' }, bucket, prefix });
    expect(staged.origin).toBe(`verified download of ${baseUrl}/ml-latest-small.zip`);
    const ratings = staged.files.find((f) => f.name === 'ratings.csv')!;
    expect(ratings.sha256).toBe('aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646');
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/raw/ml-latest-small/movies.csv` }));
    expect((await got.Body!.transformToByteArray()).length).toBe(494_431);

    const again = await downloader(cacheDir)({ dataset: 'ml-latest-small', source: { kind: 'grouplens' }, bucket, prefix });
    expect(again.origin).toBe('verified ml-latest-small.zip (cached)');
    expect(requests).toBe(1);
  });

  it('discards a download whose checksum is not the published one', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'lensflow-cache-'));
    const good = body;
    body = Buffer.concat([good, Buffer.from('tampered')]);
    try {
      const failure = await failureOf(
        downloader(cacheDir)({ dataset: 'ml-latest-small', source: { kind: 'grouplens' }, bucket, prefix: uniquePrefix('x') }),
      );
      expect(failure.type).toBe('ChecksumMismatch');
      expect(failure.message).toContain('not the published 696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436; the download was discarded');
    } finally {
      body = good;
    }
  });

  it('explains how to fix it when offline with no local copy', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'lensflow-cache-'));
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    const failure = await failureOf(
      downloader(cacheDir, 'http://127.0.0.1:9')({ dataset: 'ml-100k', source: { kind: 'auto' }, bucket, prefix: uniquePrefix('x') }),
    );
    expect(failure.type).toBe('DatasetUnavailable');
    expect(failure.message).toContain('could not download ml-100k from http://127.0.0.1:9/ml-100k.zip');
    expect(failure.message).toContain('set LENSFLOW_DATA_DIR to a folder that holds ml-100k/');
    expect(failure.message).toContain(join(cacheDir, 'ml-100k.zip'));
  });
});
