import type { DatasetName } from '../contracts/datasets';

/** How an archive is verified: a checksum GroupLens published, or its `.md5` sidecar file. */
export type ArchiveChecksum =
  | { algorithm: 'sha256' | 'md5'; value: string }
  /** ml-latest changes with each regeneration: check it against the `.md5` GroupLens serves beside it. */
  | { algorithm: 'md5'; sidecar: true };

/** What lensflow knows of one GroupLens release: the files it stages and its official archive. */
export interface DatasetSpec {
  /** Files staged to S3, as named inside the release folder (large unused files such as the tag genome are left out). */
  files: readonly string[];
  /** Archive file name under the GroupLens base URL. */
  archive: string;
  /** Published checksum of the archive (as recorded by tensorflow/datasets and GroupLens' .md5 files). */
  checksum: ArchiveChecksum;
  /** The folder the archive keeps the files in. */
  archiveFolder: string;
}

const LATEST_FILES = ['ratings.csv', 'movies.csv', 'tags.csv', 'links.csv', 'README.txt'];

export const DATASETS: Record<DatasetName, DatasetSpec> = {
  'ml-latest-small': {
    files: LATEST_FILES,
    archive: 'ml-latest-small.zip',
    checksum: { algorithm: 'sha256', value: '696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436' },
    archiveFolder: 'ml-latest-small',
  },
  'ml-latest': {
    files: LATEST_FILES,
    archive: 'ml-latest.zip',
    checksum: { algorithm: 'md5', sidecar: true },
    archiveFolder: 'ml-latest',
  },
  'ml-100k': {
    files: [
      'u.data', 'u.item', 'u.genre', 'u.user', 'u.occupation', 'u.info', 'README',
      ...[1, 2, 3, 4, 5].flatMap((k) => [`u${k}.base`, `u${k}.test`]),
    ],
    archive: 'ml-100k.zip',
    checksum: { algorithm: 'sha256', value: '50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229' },
    archiveFolder: 'ml-100k',
  },
  'ml-1m': {
    files: ['ratings.dat', 'movies.dat', 'users.dat', 'README'],
    archive: 'ml-1m.zip',
    checksum: { algorithm: 'sha256', value: 'a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20' },
    archiveFolder: 'ml-1m',
  },
  'ml-10m': {
    files: ['ratings.dat', 'movies.dat', 'tags.dat'],
    archive: 'ml-10m.zip',
    checksum: { algorithm: 'md5', value: 'ce571fd55effeba0271552578f2648bd' },
    archiveFolder: 'ml-10M100K',
  },
  'ml-20m': {
    files: LATEST_FILES,
    archive: 'ml-20m.zip',
    checksum: { algorithm: 'sha256', value: '96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3' },
    archiveFolder: 'ml-20m',
  },
  'ml-25m': {
    files: LATEST_FILES,
    archive: 'ml-25m.zip',
    checksum: { algorithm: 'sha256', value: '8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa' },
    archiveFolder: 'ml-25m',
  },
};
