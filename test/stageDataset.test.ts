/**
 * `stageDataset` against the real local S3 server: idempotent re-staging, versions staged beside
 * each other, file-level defects refused before anything is published, and the verified GroupLens
 * download (served from loopback).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { DATASETS } from '../src/activities/datasetCatalog';
import { createS3Client } from '../src/activities/s3Client';
import { listStagedVersions, makeStageDataset } from '../src/activities/stageDataset';
import type { DatasetName } from '../src/contracts/datasets';
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

  it('uploads every file once, byte for byte, under its content version, and nothing the second time', async () => {
    const prefix = uniquePrefix('stage');
    const first = await stage({ dataset: 'ml-latest-small', source: { kind: 'auto' }, bucket, prefix });
    expect(first.files.map((f) => f.action)).toEqual(DATASETS['ml-latest-small'].files.map(() => 'uploaded'));
    const version = createHash('sha256').update(first.files.map((f) => `${f.name}\0${f.sha256}\n`).join('')).digest('hex');
    expect(first.contentSha256).toBe(version);
    expect(first.rawUri).toBe(`s3://${bucket}/${prefix}/raw/ml-latest-small/${version}/`);

    const stored = objectsUnder(`${prefix}/raw/ml-latest-small/${version}`);
    expect(stored['ratings.csv']).toEqual({
      size: 2_483_723,
      sha256: 'aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646',
    });
    expect(Object.keys(stored).sort()).toEqual([...DATASETS['ml-latest-small'].files, 'manifest.json'].sort());

    const second = await stage({ dataset: 'ml-latest-small', source: { kind: 'auto' }, bucket, prefix });
    expect(second.files.map((f) => f.action)).toEqual(DATASETS['ml-latest-small'].files.map(() => 'unchanged'));
    expect(second.rawUri).toBe(first.rawUri);
  });

  it('stages a refreshed ml-latest beside the older version; both stay readable and are listed', async () => {
    const prefix = uniquePrefix('stage-versions');
    const dir = mkdtempSync(join(tmpdir(), 'lensflow-'));
    // ml-latest has ml-latest-small's format; the small copy stands in for a GroupLens regeneration.
    cpSync(join(shared, 'ml-latest-small'), join(dir, 'ml-latest'), { recursive: true });
    const old = await stage({ dataset: 'ml-latest', source: { kind: 'local', dir }, bucket, prefix });

    appendFileSync(join(dir, 'ml-latest', 'ratings.csv'), '611,1,5.0,1537799250\r\n');
    const refreshed = await stage({ dataset: 'ml-latest', source: { kind: 'local', dir }, bucket, prefix });
    expect(refreshed.rawUri).not.toBe(old.rawUri);
    expect(refreshed.files.find((f) => f.name === 'ratings.csv')!.action).toBe('uploaded');

    const read = async (uri: string) => {
      const key = uri.slice(`s3://${bucket}/`.length);
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return createHash('sha256').update(await got.Body!.transformToByteArray()).digest('hex');
    };
    for (const staged of [old, refreshed]) {
      for (const f of staged.files) expect(await read(f.uri)).toBe(f.sha256);
    }
    const listed = await listStagedVersions(s3, bucket, prefix, 'ml-latest');
    expect(listed.map((v) => v.version).sort()).toEqual([old.contentSha256, refreshed.contentSha256].sort());
    expect(listed.find((v) => v.version === refreshed.contentSha256)!.rawUri).toBe(refreshed.rawUri);
  });

  it('refuses a foreign object under a version key and leaves it as it was', async () => {
    const probe = await stage({ dataset: 'ml-latest-small', source: { kind: 'auto' }, bucket, prefix: uniquePrefix('probe') });
    const prefix = uniquePrefix('stage-conflict');
    const key = `${prefix}/raw/ml-latest-small/${probe.contentSha256}/movies.csv`;
    boto3Json(settings, `s3.put_object(Bucket='${bucket}', Key='${key}', Body=b'not movies'); print('{}')`);

    const failure = await failureOf(stage({ dataset: 'ml-latest-small', source: { kind: 'auto' }, bucket, prefix }));
    expect(failure.type).toBe('StagedContentConflict');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`s3://${bucket}/${key} already holds an object without a lensflow checksum`);
    expect(objectsUnder(`${prefix}/raw/ml-latest-small/${probe.contentSha256}`)['movies.csv']!.size).toBe(10);
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

describe('stageDataset refuses file-level defects before publishing anything', () => {
  /** A copy of a real release in a temp folder, with `edit` applied to one of its files. */
  function defective(dataset: DatasetName, from: string, file: string, content: (original: Buffer) => Buffer | string): string {
    const dir = mkdtempSync(join(tmpdir(), 'lensflow-defect-'));
    cpSync(join(shared, from), join(dir, dataset), { recursive: true });
    writeFileSync(join(dir, dataset, file), content(readFileSync(join(dir, dataset, file))));
    return dir;
  }
  const firstLines = (b: Buffer, n: number) => b.toString('latin1').split('\n').slice(0, n).join('\n') + '\n';

  it.each<[string, DatasetName, string, string, (b: Buffer) => Buffer | string, string, string]>([
    ['an empty file', 'ml-latest-small', 'ml-latest-small', 'ratings.csv', () => '', 'EmptyFile', 'the file is empty'],
    [
      'records without their last field',
      'ml-100k', 'ml-100k', 'u.data',
      (b) => firstLines(b, 50).replace(/\t\d+\n/g, '\n'),
      'WrongFormat',
      'none of the first 5 line(s) splits into ml-100k\'s 4 fields (user id, item id, rating, timestamp) on "\\t"; line 1 has 3',
    ],
    ['a header-only file', 'ml-latest-small', 'ml-latest-small', 'ratings.csv', () => 'userId,movieId,rating,timestamp\r\n', 'NoDataRows', 'holds its header and no data row'],
    [
      'a renamed column',
      'ml-latest-small', 'ml-latest-small', 'movies.csv',
      (b) => b.toString('utf8').replace('movieId,title,genres', 'movieId,name,genres'),
      'WrongColumns',
      'expected the header "movieId,title,genres", found "movieId,name,genres"',
    ],
    [
      'a CSV with another delimiter',
      'ml-latest-small', 'ml-latest-small', 'ratings.csv',
      (b) => firstLines(b, 50).replace(/,/g, ';'),
      'WrongDelimiter',
      'the header is separated by ";", not by "," as ml-latest-small is',
    ],
    [
      'a headerless file with another delimiter',
      'ml-100k', 'ml-100k', 'u.data',
      (b) => firstLines(b, 50).replace(/\t/g, ','),
      'WrongDelimiter',
      'none of the first 5 line(s) splits into ml-100k\'s 4 fields (user id, item id, rating, timestamp) on "\\t"; line 1 has 1, and "," would split it into 4',
    ],
    [
      'another file\'s format (u.item where u.data belongs)',
      'ml-100k', 'ml-100k', 'u.data',
      () => firstLines(readFileSync(join(shared, 'ml-100k', 'u.item')), 20),
      'WrongFormat',
      'none of the first 5 line(s) splits into ml-100k\'s 4 fields (user id, item id, rating, timestamp) on "\\t"; line 1 has 1',
    ],
    [
      'bytes that are not UTF-8',
      'ml-latest-small', 'ml-latest-small', 'movies.csv',
      (b) => Buffer.concat([b, Buffer.from('999999,Caf\xe9 (2001),Drama\r\n', 'latin1')]),
      'InvalidEncoding',
      'line 9744 is not valid UTF-8',
    ],
  ])('%s', async (_what, dataset, from, file, content, type, problem) => {
    const dir = defective(dataset, from, file, content);
    const prefix = uniquePrefix('defect');
    const stage = makeStageDataset(s3, settings.data);
    const failure = await failureOf(stage({ dataset, source: { kind: 'local', dir }, bucket, prefix }));
    expect(failure.type).toBe(type);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`${dataset}/${file} (local folder ${join(dir, dataset)}): `);
    expect(failure.message).toContain(problem);
    expect(failure.message).toContain('Fix: ');
    expect(objectsUnder(prefix)).toEqual({});
  });

  it('leaves a malformed first record among good ones to cleaning (a row defect, not a file defect)', async () => {
    const dir = defective('ml-100k', 'ml-100k', 'u.data', (b) => '196\t242\n' + firstLines(b, 50));
    const staged = await makeStageDataset(s3, settings.data)({ dataset: 'ml-100k', source: { kind: 'local', dir }, bucket, prefix: uniquePrefix('row-defect') });
    expect(staged.files.find((f) => f.name === 'u.data')!.action).toBe('uploaded');
  });
});

describe('stageDataset from the GroupLens download', () => {
  let server: Server;
  let baseUrl: string;
  let body: Buffer = readFileSync(join(shared, 'ml-latest-small', 'ml-latest-small.zip'));
  let requests = 0;
  /** More files the server serves, by URL path. */
  const extra: Record<string, Buffer> = {};

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      const served = req.url === '/ml-latest-small.zip' ? body : extra[req.url ?? ''];
      if (!served) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': served.length }).end(served);
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
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: staged.files.find((f) => f.name === 'movies.csv')!.uri.slice(`s3://${bucket}/`.length) }));
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

  it('refuses a truncated archive that matches its sidecar checksum, names it and discards it', async () => {
    // ml-latest is checked against the .md5 GroupLens serves beside it, so a truncated copy with a
    // matching sidecar passes the checksum and must fail at extraction.
    const truncated = body.subarray(0, Math.floor(body.length / 2));
    extra['/ml-latest.zip'] = truncated;
    extra['/ml-latest.zip.md5'] = Buffer.from(`${createHash('md5').update(truncated).digest('hex')}  ml-latest.zip\n`);
    const cacheDir = mkdtempSync(join(tmpdir(), 'lensflow-cache-'));
    const prefix = uniquePrefix('corrupt-archive');
    const failure = await failureOf(downloader(cacheDir)({ dataset: 'ml-latest', source: { kind: 'grouplens' }, bucket, prefix }));
    expect(failure.type).toBe('CorruptArchive');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`ml-latest.zip (${baseUrl}/ml-latest.zip): the archive cannot be extracted`);
    expect(failure.message).toContain('it was discarded. Fix: ');
    expect(existsSync(join(cacheDir, 'ml-latest.zip'))).toBe(false);
    expect(objectsUnder(prefix)).toEqual({});
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
