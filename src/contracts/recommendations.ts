/**
 * How the `recommend` job lays out its lookup JSON, read back by `lensflow recommend` and `lensflow
 * similar`: one file per shard of users, `json/users-<userId div usersPerShard>.json` =
 * { "<userId>": [...] }, the model that made the lists in `json/<modelFile>`, and similar movies in
 * `json/<similarFile>` = { "<movieId>": [...] }.
 */
export const RECOMMENDATION_SHARDS = { usersPerShard: 1000, modelFile: 'model.json', similarFile: 'similar-movies.json' } as const;

/** The shard file of a user, under the run's recommendations folder. */
export function recommendationShard(recommendationsUri: string, userId: number): string {
  return `${recommendationsUri}json/users-${Math.floor(userId / RECOMMENDATION_SHARDS.usersPerShard)}.json`;
}

/** The served model's description (`ServedModel`), under the run's recommendations folder. */
export function servedModelFile(recommendationsUri: string): string {
  return `${recommendationsUri}json/${RECOMMENDATION_SHARDS.modelFile}`;
}

/** Similar movies per movie, under the run's recommendations folder. */
export function similarMoviesFile(recommendationsUri: string): string {
  return `${recommendationsUri}json/${RECOMMENDATION_SHARDS.similarFile}`;
}
