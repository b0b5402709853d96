/**
 * The file formats of each MovieLens release, as GroupLens ships them: the one definition that the
 * staging check (TypeScript) and the Spark readers (Python, via the exported JSON) both read.
 */
import { z } from 'zod';
import type { DatasetName } from './datasets';

export const FileFormat = z.object({
  /** Field separator, literal (`::` in the .dat files). */
  delimiter: z.string().min(1),
  /** `latin-1` decodes every byte; a `utf-8` file must be valid UTF-8 throughout. */
  encoding: z.enum(['utf-8', 'latin-1']),
  /** The first line names the columns (the CSV releases); otherwise every line is a record. */
  hasHeader: z.boolean(),
  /** Column names in file order: the header of a CSV release, the README's names otherwise. */
  columns: z.array(z.string().min(1)).min(1),
});
export type FileFormat = z.infer<typeof FileFormat>;

/**
 * What can be wrong with a whole file, as the failure type both sides raise. Row-level defects are
 * not here: cleaning quarantines those row by row.
 */
export const FileDefect = z.enum(['MissingFile', 'EmptyFile', 'NoDataRows', 'WrongColumns', 'WrongDelimiter', 'WrongFormat', 'InvalidEncoding', 'CorruptArchive']);
export type FileDefect = z.infer<typeof FileDefect>;

/** Separators a misformatted file is tried with, to tell a wrong delimiter from wrong columns. */
export const CANDIDATE_DELIMITERS = [',', '\t', '|', '::', ';'] as const;

const csv = (columns: string[]): FileFormat => ({ delimiter: ',', encoding: 'utf-8', hasHeader: true, columns });
const LATEST = { 'ratings.csv': csv(['userId', 'movieId', 'rating', 'timestamp']), 'movies.csv': csv(['movieId', 'title', 'genres']) };
const ML100K_RATINGS: FileFormat = { delimiter: '\t', encoding: 'utf-8', hasHeader: false, columns: ['user id', 'item id', 'rating', 'timestamp'] };
const ML100K_GENRES = ['unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western'];
const dat = (encoding: FileFormat['encoding'], columns: string[]): FileFormat => ({ delimiter: '::', encoding, hasHeader: false, columns });
const DAT_RATINGS = dat('utf-8', ['UserID', 'MovieID', 'Rating', 'Timestamp']);

/** Per release, the files the Spark jobs read, by name in the release folder. */
export const RELEASE_FORMATS: Record<DatasetName, Record<string, FileFormat>> = {
  'ml-latest-small': LATEST,
  'ml-latest': LATEST,
  'ml-20m': LATEST,
  'ml-25m': LATEST,
  'ml-100k': {
    'u.data': ML100K_RATINGS,
    'u.item': {
      delimiter: '|',
      encoding: 'latin-1',
      hasHeader: false,
      columns: ['movie id', 'movie title', 'release date', 'video release date', 'IMDb URL', ...ML100K_GENRES],
    },
    ...Object.fromEntries([1, 2, 3, 4, 5].flatMap((k) => [`u${k}.base`, `u${k}.test`]).map((f) => [f, ML100K_RATINGS])),
  },
  'ml-1m': { 'ratings.dat': DAT_RATINGS, 'movies.dat': dat('latin-1', ['MovieID', 'Title', 'Genres']) },
  'ml-10m': { 'ratings.dat': DAT_RATINGS, 'movies.dat': dat('utf-8', ['MovieID', 'Title', 'Genres']) },
};
