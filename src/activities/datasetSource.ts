/**
 * Finds a dataset's raw files on the worker's disk: in a local folder, or by downloading the
 * official GroupLens archive into the cache, checking its published SHA-256 and extracting it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import * as yauzl from 'yauzl';
import type { DataSource, DatasetName } from '../contracts/datasets';
import type { Settings } from '../settings';
import { DATASETS, type DatasetSpec } from './datasetCatalog';
import { fileDefect } from './inputFiles';
import { generateSynthetic } from './syntheticSource';

/** A folder holding every file of the dataset, and a phrase saying where it came from. */
export interface ResolvedDataset {
  dir: string;
  origin: string;
}

/** Hex digest of a file, streamed. */
export async function hashFile(path: string, algorithm: 'sha256' | 'md5' = 'sha256'): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The checksum the archive must have: the pinned one, or the one in GroupLens' `.md5` sidecar. */
async function expectedChecksum(spec: DatasetSpec, url: string): Promise<{ algorithm: 'sha256' | 'md5'; value: string }> {
  if ('value' in spec.checksum) return spec.checksum;
  const res = await fetch(`${url}.md5`).catch((err: Error) => {
    throw ApplicationFailure.retryable(`could not fetch ${url}.md5: ${(err.cause as Error | undefined)?.message ?? err.message}`, 'DatasetUnavailable');
  });
  const value = /\b[0-9a-f]{32}\b/i.exec(await res.text())?.[0]?.toLowerCase();
  if (!res.ok || !value) throw ApplicationFailure.nonRetryable(`${url}.md5 holds no MD5 checksum (HTTP ${res.status})`, 'ChecksumMismatch');
  return { algorithm: 'md5', value };
}

function missingFiles(dir: string, dataset: DatasetName): string[] {
  return DATASETS[dataset].files.filter((f) => !existsSync(join(dir, f)));
}

/** Resolves the data source to a folder with all of the dataset's files. */
export async function resolveDataset(
  dataset: DatasetName,
  source: DataSource,
  data: Settings['data'],
): Promise<ResolvedDataset> {
  if (source.kind === 'synthetic') return generateSynthetic(dataset, source, data);
  if (source.kind === 'local' || (source.kind === 'auto' && data.localDir)) {
    const base = source.kind === 'local' ? source.dir : data.localDir!;
    const dir = join(base, dataset);
    const missing = missingFiles(dir, dataset);
    if (missing.length === 0) return { dir, origin: `local folder ${dir}` };
    if (source.kind === 'local' || existsSync(dir)) {
      throw ApplicationFailure.nonRetryable(
        `dataset ${dataset} is incomplete in ${dir}: missing ${missing.join(', ')}. ` +
          `Point the data source (or LENSFLOW_DATA_DIR) at a folder that holds ${dataset}/ as GroupLens ships it.`,
        'DatasetNotFound',
      );
    }
    // `auto` with a data dir that lacks this dataset falls through to the download.
  }
  return downloadDataset(dataset, data);
}

async function downloadDataset(dataset: DatasetName, data: Settings['data']): Promise<ResolvedDataset> {
  const spec = DATASETS[dataset];
  const url = `${data.downloadBaseUrl}/${spec.archive}`;
  const pinned = 'value' in spec.checksum ? spec.checksum.value.slice(0, 16) : undefined;
  if (pinned) {
    const cached = join(data.cacheDir, pinned, spec.archiveFolder);
    if (missingFiles(cached, dataset).length === 0) return { dir: cached, origin: `verified ${spec.archive} (cached)` };
  }

  await mkdir(data.cacheDir, { recursive: true });
  const zipPath = join(data.cacheDir, spec.archive);
  const expected = await expectedChecksum(spec, url);
  if (!existsSync(zipPath) || (await hashFile(zipPath, expected.algorithm)) !== expected.value) {
    await fetchToFile(url, zipPath, dataset);
  }
  const actual = await hashFile(zipPath, expected.algorithm);
  if (actual !== expected.value) {
    await rm(zipPath, { force: true });
    throw ApplicationFailure.nonRetryable(
      `${url} has ${expected.algorithm.toUpperCase()} ${actual}, not the published ${expected.value}; the download was discarded. ` +
        `Retry later, or put a verified copy of ${dataset}/ in LENSFLOW_DATA_DIR.`,
      'ChecksumMismatch',
    );
  }
  const extracted = join(data.cacheDir, expected.value.slice(0, 16), spec.archiveFolder);
  if (missingFiles(extracted, dataset).length > 0) {
    const staging = `${extracted}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await extractZip(zipPath, `${spec.archiveFolder}/`, staging).catch(async (err: unknown) => {
      // The checksum matched, so the archive is as published; what fails here is the archive itself.
      await rm(staging, { recursive: true, force: true });
      await rm(zipPath, { force: true });
      throw fileDefect(
        'CorruptArchive',
        `${spec.archive} (${url})`,
        `the archive cannot be extracted (${err instanceof Error ? err.message : String(err)}); it was discarded`,
        `Fix: retry later, or put ${dataset}/ as GroupLens ships it in LENSFLOW_DATA_DIR.`,
      );
    });
    await rm(extracted, { recursive: true, force: true });
    await mkdir(join(extracted, '..'), { recursive: true });
    await rename(staging, extracted);
  }
  const missing = missingFiles(extracted, dataset);
  if (missing.length > 0) {
    throw fileDefect('CorruptArchive', `${spec.archive} (${url})`, `the archive lacks ${spec.archiveFolder}/${missing.join(', ')}`, 'Fix: put the release as GroupLens ships it in LENSFLOW_DATA_DIR.');
  }
  return { dir: extracted, origin: `verified download of ${url}` };
}

async function fetchToFile(url: string, path: string, dataset: DatasetName): Promise<void> {
  const partial = `${path}.partial-${process.pid}`;
  try {
    const res = await fetch(url);
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(partial));
    await rename(partial, path);
  } catch (err) {
    await rm(partial, { force: true });
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw ApplicationFailure.nonRetryable(
      `could not download ${dataset} from ${url} (${cause}). If this machine is offline, set LENSFLOW_DATA_DIR ` +
        `to a folder that holds ${dataset}/ as GroupLens ships it, or place the official archive at ${path}.`,
      'DatasetUnavailable',
    );
  }
}

/** Extracts the regular files under `folder` in the zip into `dest`, flattening that folder. */
function extractZip(zipPath: string, folder: string, dest: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      zip.on('error', reject);
      zip.on('end', () => resolvePromise());
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        const rel = name.startsWith(folder) ? name.slice(folder.length) : '';
        // Only plain files directly in the release folder; nothing that could escape `dest`.
        if (!rel || rel.includes('/') || rel.includes('..')) return zip.readEntry();
        zip.openReadStream(entry, (e2, stream) => {
          if (e2 || !stream) return reject(e2);
          mkdir(dest, { recursive: true })
            .then(() => pipeline(stream, createWriteStream(join(dest, rel))))
            .then(() => zip.readEntry(), reject);
        });
      });
      zip.readEntry();
    });
  });
}

