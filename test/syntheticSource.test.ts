import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataset } from '../src/activities/datasetSource';
import { loadSettings } from '../src/settings';

// The real generator (the venv's python over the built package zip), at its smallest size.
describe('synthetic data source', () => {
  let cacheDir: string;
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'lensflow-synthetic-'));
  });
  afterAll(() => rm(cacheDir, { recursive: true, force: true }));

  const data = () => ({ ...loadSettings().data, localDir: undefined, cacheDir });

  it('writes an ml-25m-format release once per ratings and seed, then reuses it', async () => {
    const source = { kind: 'synthetic', ratings: 2000, seed: 3 } as const;
    const first = await resolveDataset('ml-25m', source, data());
    expect(first.origin).toBe('synthetic release of 2000 ratings, seed 3');
    const ratings = (await readFile(join(first.dir, 'ratings.csv'), 'utf8')).trimEnd().split('\n');
    expect(ratings[0]).toBe('userId,movieId,rating,timestamp');
    expect(ratings).toHaveLength(2001);
    expect((await readFile(join(first.dir, 'movies.csv'), 'utf8')).split('\n')[0]).toBe('movieId,title,genres');

    const again = await resolveDataset('ml-25m', source, data());
    expect(again).toEqual({ dir: first.dir, origin: `${first.origin} (cached)` });
  }, 60_000);

  it('refuses a release whose format is not ml-25m CSV, naming the fix', async () => {
    await expect(resolveDataset('ml-100k', { kind: 'synthetic', ratings: 2000, seed: 1 }, data())).rejects.toThrow(/use --dataset ml-25m/);
  });
});
