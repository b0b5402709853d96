"""Job `recommend`: top-N movies per user from the final model, and similar movies.

Writes under `output`:
- `users/` Parquet (user_id, rank, movie_id, score, source, title, genres); already-rated movies never
  appear, and users the model does not know get the most popular movies (`source` popularity);
- `json/users-<user_id div 1000>.json`: {"<user_id>": [{movieId, title, genres, score}, ...]} for lookups;
- `similar/` Parquet and `json/similar-movies.json`: for the most-rated movies, the movies whose
  item factors have the highest cosine similarity.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from .. import tables
from ..als import load_model, movie_popularity, recommend_for_users
from ..contracts import shared_fact
from ..storage import write_json
from ..topn import similar_movies

# Read back by `lensflow recommend`; the size is defined in src/contracts/recommendations.ts.
USERS_PER_SHARD: int = shared_fact("recommendation-shards")["usersPerShard"]
SIMILAR_FOR = 2000  # similar movies for this many most-rated movies, unless the input says


def _write_user_shards(spark: SparkSession, recs: DataFrame, folder: str) -> None:
    item = F.struct(
        F.col(C.MOVIE_ID).alias("movieId"), F.col(C.TITLE).alias("title"), F.col(C.GENRES).alias("genres"),
        F.col("score").alias("score"),
    )  # fmt: skip
    per_user = recs.groupBy(C.USER_ID).agg(
        F.sort_array(F.collect_list(F.struct("rank", item.alias("r")))).alias("l")
    )
    shards = per_user.groupBy((F.col(C.USER_ID) / USERS_PER_SHARD).cast("long").alias("shard")).agg(
        F.collect_list(F.struct(C.USER_ID, "l")).alias("users")
    )
    for row in shards.toLocalIterator():
        doc = {str(u[C.USER_ID]): [e["r"].asDict(recursive=True) for e in u["l"]] for u in row["users"]}
        for recs_of_user in doc.values():
            for rec in recs_of_user:
                rec["genres"] = rec["genres"] or []
        write_json(spark, f"{folder}/users-{row['shard']}.json", doc)


def run(spark: SparkSession, job_input: dict[str, Any]) -> dict[str, Any]:
    model = load_model(job_input["model"])
    n, similar_for = job_input["n"], job_input.get("similarFor", SIMILAR_FOR)
    ratings = tables.read_parquet(spark, job_input["ratings"]).cache()
    movies = tables.read_parquet(spark, job_input["movies"]).select(C.MOVIE_ID, C.TITLE, C.GENRES)
    popularity = movie_popularity(ratings).cache()
    out = job_input["output"].rstrip("/")

    recs = (
        recommend_for_users(model, ratings.select(C.USER_ID), n, ratings, popularity)
        .join(movies, C.MOVIE_ID, "left")
        .cache()
    )
    recs.write.mode("overwrite").parquet(f"{out}/users")
    _write_user_shards(spark, recs, f"{out}/json")

    top = popularity.orderBy(F.col("popularity").desc(), C.MOVIE_ID).limit(similar_for).select(C.MOVIE_ID)
    similar = similar_movies(model.itemFactors, top, n).join(
        movies.select(F.col(C.MOVIE_ID).alias("similar_movie_id"), F.col(C.TITLE).alias("similar_title")),
        "similar_movie_id",
        "left",
    )
    similar.write.mode("overwrite").parquet(f"{out}/similar")
    lists = (
        spark.read.parquet(f"{out}/similar")
        .groupBy(C.MOVIE_ID)
        .agg(
            F.sort_array(
                F.collect_list(F.struct("rank", "similar_movie_id", "similar_title", "similarity"))
            ).alias("l")
        )
        .collect()
    )
    similar_doc = {
        str(r[C.MOVIE_ID]): [
            {"movieId": e["similar_movie_id"], "title": e["similar_title"], "similarity": e["similarity"]}
            for e in r["l"]
        ]
        for r in lists
    }
    write_json(spark, f"{out}/json/similar-movies.json", similar_doc)

    return {
        "job": "recommend",
        "n": n,
        "outputs": {
            "userRecs": f"{out}/users",
            "userRecsJson": f"{out}/json/",
            "similarMovies": f"{out}/similar",
            "similarMoviesJson": f"{out}/json/similar-movies.json",
        },
        "nUsers": recs.select(C.USER_ID).distinct().count(),
    }
