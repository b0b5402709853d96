import type { DatasetName } from '../contracts/datasets';

/** What lensflow knows of one GroupLens release: its files and its official archive. */
export interface DatasetSpec {
  /** Files staged to S3, as named inside the release folder. */
  files: readonly string[];
  /** Archive file name under the GroupLens base URL. */
  archive: string;
  /** Published SHA-256 of the archive (GroupLens checksums as recorded by tensorflow/datasets). */
  archiveSha256: string;
  /** The folder the archive keeps the files in. */
  archiveFolder: string;
}

export const DATASETS: Record<DatasetName, DatasetSpec> = {
  'ml-latest-small': {
    files: ['ratings.csv', 'movies.csv', 'tags.csv', 'links.csv', 'README.txt'],
    archive: 'ml-latest-small.zip',
    archiveSha256: '696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436',
    archiveFolder: 'ml-latest-small',
  },
  'ml-100k': {
    files: [
      'u.data', 'u.item', 'u.genre', 'u.user', 'u.occupation', 'u.info', 'README',
      ...[1, 2, 3, 4, 5].flatMap((k) => [`u${k}.base`, `u${k}.test`]),
    ],
    archive: 'ml-100k.zip',
    archiveSha256: '50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229',
    archiveFolder: 'ml-100k',
  },
};
