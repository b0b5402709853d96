/**
 * How the `recommend` job lays out its lookup JSON, read back by `lensflow recommend`: one file per
 * shard of users, `json/users-<userId div usersPerShard>.json` = { "<userId>": [...] }.
 */
export const RECOMMENDATION_SHARDS = { usersPerShard: 1000 } as const;

/** The shard file of a user, under the run's recommendations folder. */
export function recommendationShard(recommendationsUri: string, userId: number): string {
  return `${recommendationsUri}json/users-${Math.floor(userId / RECOMMENDATION_SHARDS.usersPerShard)}.json`;
}
