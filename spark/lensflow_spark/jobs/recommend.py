"""Job `recommend`: top-N movies per user from the final model, and similar movies.

Writes under `--output`:
- `users/` Parquet (user_id, rank, movie_id, score, source, title, genres); already-rated movies never
  appear, and users the model does not know get the most popular movies (`source` popularity);
- `json/users-<user_id div 1000>.json`: {"<user_id>": [{movieId, title, genres, score}, ...]} for lookups;
- `similar/` Parquet and `json/similar-movies.json`: for the most-rated movies, the movies whose
  item factors have the highest cosine similarity.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import columns as C
from ..als import load_model, movie_popularity, recommend_for_users
from ..storage import write_json
from ..topn import similar_movies
from . import runtime

USERS_PER_SHARD = 1000  # matches src/activities/recommendationsStore.ts


def build_parser() -> argparse.ArgumentParser:
    p = runtime.parser("recommend", __doc__)
    p.add_argument("--model", required=True, help="saved ALS model folder")
    p.add_argument("--ratings", required=True, help="clean ratings (Parquet)")
    p.add_argument("--movies", required=True, help="clean movies (Parquet)")
    p.add_argument("--n", type=int, default=10, help="recommendations per user and similar movies per movie")
    p.add_argument(
        "--similar-for", type=int, default=2000, help="similar movies for this many most-rated movies"
    )
    p.add_argument("--output", required=True, help="folder URI for the outputs")
    return p


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


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    model = load_model(args.model)
    ratings = spark.read.parquet(args.ratings).cache()
    movies = spark.read.parquet(args.movies).select(C.MOVIE_ID, C.TITLE, C.GENRES)
    popularity = movie_popularity(ratings).cache()
    out = args.output.rstrip("/")

    recs = (
        recommend_for_users(model, ratings.select(C.USER_ID), args.n, ratings, popularity)
        .join(movies, C.MOVIE_ID, "left")
        .cache()
    )
    recs.write.mode("overwrite").parquet(f"{out}/users")
    _write_user_shards(spark, recs, f"{out}/json")

    top = (
        popularity.orderBy(F.col("popularity").desc(), C.MOVIE_ID).limit(args.similar_for).select(C.MOVIE_ID)
    )
    similar = similar_movies(model.itemFactors, top, args.n).join(
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

    doc = {
        "job": "recommend",
        "n": args.n,
        "outputs": {
            "userRecs": f"{out}/users",
            "userRecsJson": f"{out}/json/",
            "similarMovies": f"{out}/similar",
            "similarMoviesJson": f"{out}/json/similar-movies.json",
        },
        "nUsers": recs.select(C.USER_ID).distinct().count(),
    }
    return runtime.publish(spark, "recommend", args.result, doc)


def main(argv: list[str] | None = None) -> None:
    runtime.run_job("recommend", build_parser, run, argv)
