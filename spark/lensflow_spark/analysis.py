"""Data analysis of the cleaned tables with Spark SQL: top movies, distributions, years, genres, activity.

Inputs are the canonical cleaned tables:

    ratings(user_id int, movie_id int, rating double, rated_at timestamp, rating_year int)
    movies(movie_id int, title string, year int (release year, nullable), genres array<string>)

Every table function is `DataFrame -> DataFrame` and lazy: it runs one `spark.sql` query over temp
views that PySpark registers under unique names for that query and drops again (the `{name}` /
DataFrame-keyword form of `SparkSession.sql`), with values passed as named parameter markers. Only
`summarize` acts (it collects the small results); it is what the analysis job calls.

Run-folder layout of the analysis and of what reads it (the notebook, `report`, `plots`), as the
training pipeline's `runLayout` (src/contracts/pipeline.ts) places it; `<run>` is one run's folder,
`s3://<bucket>/<prefix>/runs/<run-id>/` or a local copy of it:

    <run>/analysis/summary.json     `summarize(...)`: counts, global mean, sparsity, the small
                                    tables below as lists of row objects, user-activity quantiles
                                    and the first `top_n` of `top_movies`
    <run>/analysis/<table>/         Parquet, one folder per entry of `analysis_tables(...)`:
                                    top_movies (the whole ranking), rating_distribution,
                                    ratings_by_rating_year, ratings_by_release_year, genre_stats,
                                    user_activity (ratings-per-user histogram)
    <run>/results/clean.json        the `clean` job's result (raw / clean / quarantined counts)
    <run>/results/grid/NNN.json     one `als_point` result per grid point: {"point": {"rank",
                                    "regParam", "maxIter", ...}, "mean": {"rmse", "mae"}, ...}
    <run>/results/evaluate.json     the `evaluate` job's result: {"models": {"als": {"rmse", "mae",
                                    "ndcg_at_k", ...}, "global_mean": {...}, ...}, ...}
    <run>/report/report.html        `report.render_report(...)`, one self-contained page
    <run>/report/<figure>.png       each figure of `report.report_figures(...)`

Column names of the outputs are the `*_COLUMNS` tuples below; `plots` and `report` read them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from pyspark.sql import DataFrame

from .contracts import shared_fact

# Layout of a run folder (see the module docstring), relative to `<run>`, from the one definition
# the workflow places results by (`RUN_LAYOUT` of src/contracts/pipeline.ts).
_LAYOUT = shared_fact("run-layout")
ANALYSIS_DIR = _LAYOUT["analysis"].rstrip("/")
SUMMARY_NAME = "summary.json"
SUMMARY_FILE = f"{ANALYSIS_DIR}/{SUMMARY_NAME}"
CLEAN_FILE = _LAYOUT["result"].format(resultName="clean")
GRID_DIR = _LAYOUT["result"].format(resultName=f"{_LAYOUT['gridResults']}/-").rsplit("/", 1)[0]
EVALUATION_FILE = _LAYOUT["result"].format(resultName="evaluate")
REPORT_DIR = _LAYOUT["report"].rstrip("/")
REPORT_NAME = "report.html"
REPORT_FILE = f"{REPORT_DIR}/{REPORT_NAME}"
TABLE_NAMES = (
    "top_movies",
    "rating_distribution",
    "ratings_by_rating_year",
    "ratings_by_release_year",
    "genre_stats",
    "user_activity",
)

TOP_MOVIES_COLUMNS = ("rank", "movie_id", "title", "year", "n_ratings", "avg_rating", "bayes_rating")
RATING_DISTRIBUTION_COLUMNS = ("rating", "n_ratings", "share")
RATING_YEAR_COLUMNS = ("rating_year", "n_ratings", "n_users", "avg_rating")
RELEASE_YEAR_COLUMNS = ("release_year", "n_ratings", "n_movies", "avg_rating")
GENRE_COLUMNS = ("genre", "n_movies", "n_rated_movies", "n_ratings", "avg_rating")
USER_ACTIVITY_COLUMNS = ("ratings_per_user", "n_users")

# Share of all ratings given by the most active tenth of users: the head of the long tail.
TOP_USER_FRACTION = 0.1


@dataclass(frozen=True)
class AnalysisConfig:
    """Parameters of the analysis; validated on construction."""

    min_ratings: int = 20
    """Movies with fewer ratings than this are left out of the top-movies ranking."""
    prior_weight: float = 20.0
    """C of the Bayesian average: how many ratings at the global mean every movie starts with.
    Larger values pull movies with few ratings harder towards the global mean."""
    top_n: int = 20
    """How many of the ranked movies `summarize` keeps in the summary."""

    def __post_init__(self) -> None:
        if self.min_ratings < 1:
            raise ValueError(f"min_ratings must be >= 1, got {self.min_ratings}")
        if not self.prior_weight >= 0 or math.isinf(self.prior_weight):
            raise ValueError(f"prior_weight must be a finite number >= 0, got {self.prior_weight}")
        if self.top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {self.top_n}")


def top_rated_movies(
    ratings: DataFrame, movies: DataFrame, min_ratings: int = 20, prior_weight: float = 20.0
) -> DataFrame:
    """Movies with at least `min_ratings` ratings, ranked by their Bayesian average rating.

    bayes_rating = (C·m + Σr) / (C + n), with C = `prior_weight`, m the mean of all ratings (every
    movie, before the `min_ratings` filter), Σr and n the sum and count of the movie's ratings. It
    is the posterior mean when each movie starts with C pseudo-ratings at m, so one 5-star vote
    cannot outrank hundreds of 4.5s, as ranking by the raw mean does. C = 0 gives the raw mean.

    Ties are broken by more ratings, then by the smaller movie_id, so `rank` (1, 2, ...) is
    deterministic. A rated movie missing from `movies` keeps a null title and year. Columns:
    `TOP_MOVIES_COLUMNS`; rows come ordered by rank.
    """
    if min_ratings < 1:
        raise ValueError(f"min_ratings must be >= 1, got {min_ratings}")
    if not prior_weight >= 0 or math.isinf(prior_weight):
        raise ValueError(f"prior_weight must be a finite number >= 0, got {prior_weight}")
    return ratings.sparkSession.sql(
        """
        WITH stats AS (
          SELECT movie_id, COUNT(*) AS n_ratings, SUM(rating) AS rating_sum, AVG(rating) AS avg_rating
          FROM {ratings}
          GROUP BY movie_id
        ),
        prior AS (SELECT AVG(rating) AS global_mean FROM {ratings}),
        scored AS (
          SELECT s.movie_id, m.title, m.year, s.n_ratings, s.avg_rating,
                 (:prior_weight * p.global_mean + s.rating_sum) / (:prior_weight + s.n_ratings)
                   AS bayes_rating
          FROM stats s
          CROSS JOIN prior p
          LEFT JOIN {movies} m ON m.movie_id = s.movie_id
          WHERE s.n_ratings >= :min_ratings
        )
        SELECT CAST(ROW_NUMBER() OVER (ORDER BY bayes_rating DESC, n_ratings DESC, movie_id) AS INT) AS rank,
               movie_id, title, year, n_ratings, avg_rating, bayes_rating
        FROM scored
        ORDER BY rank
        """,
        args={"min_ratings": int(min_ratings), "prior_weight": float(prior_weight)},
        ratings=ratings,
        movies=movies,
    )


def rating_distribution(ratings: DataFrame) -> DataFrame:
    """How many ratings each rating value got, and its share of all ratings, ordered by rating.

    Columns: `RATING_DISTRIBUTION_COLUMNS`.
    """
    return ratings.sparkSession.sql(
        """
        SELECT rating, COUNT(*) AS n_ratings, COUNT(*) / SUM(COUNT(*)) OVER () AS share
        FROM {ratings}
        GROUP BY rating
        ORDER BY rating
        """,
        ratings=ratings,
    )


def ratings_by_rating_year(ratings: DataFrame) -> DataFrame:
    """Number of ratings, of distinct raters and the average rating per year the ratings were given.

    Rows with a null `rating_year` are left out. Columns: `RATING_YEAR_COLUMNS`, ordered by year.
    """
    return ratings.sparkSession.sql(
        """
        SELECT rating_year, COUNT(*) AS n_ratings, COUNT(DISTINCT user_id) AS n_users,
               AVG(rating) AS avg_rating
        FROM {ratings}
        WHERE rating_year IS NOT NULL
        GROUP BY rating_year
        ORDER BY rating_year
        """,
        ratings=ratings,
    )


def ratings_by_release_year(ratings: DataFrame, movies: DataFrame) -> DataFrame:
    """Number of ratings, of rated movies and the average rating per movie release year.

    Movies without a release year, and ratings of movies missing from `movies`, are left out.
    Columns: `RELEASE_YEAR_COLUMNS`, ordered by year.
    """
    return ratings.sparkSession.sql(
        """
        SELECT m.year AS release_year, COUNT(*) AS n_ratings, COUNT(DISTINCT r.movie_id) AS n_movies,
               AVG(r.rating) AS avg_rating
        FROM {ratings} r
        JOIN {movies} m ON m.movie_id = r.movie_id
        WHERE m.year IS NOT NULL
        GROUP BY m.year
        ORDER BY release_year
        """,
        ratings=ratings,
        movies=movies,
    )


def genre_stats(ratings: DataFrame, movies: DataFrame) -> DataFrame:
    """Popularity and average rating of each genre, from the movies' exploded genre lists.

    A movie counts once per distinct genre it lists, so the genre counts add up to more than the
    movie and rating totals. n_movies counts catalogue movies, n_rated_movies those with a rating;
    avg_rating is the mean over the genre's ratings (null when it has none). Movies without genres
    are in no row. Columns: `GENRE_COLUMNS`, ordered by n_ratings descending, then genre.
    """
    return ratings.sparkSession.sql(
        """
        WITH movie_stats AS (
          SELECT movie_id, COUNT(*) AS n_ratings, SUM(rating) AS rating_sum
          FROM {ratings}
          GROUP BY movie_id
        ),
        movie_genres AS (
          SELECT movie_id, explode(array_distinct(genres)) AS genre FROM {movies}
        )
        SELECT g.genre,
               COUNT(*) AS n_movies,
               COUNT(s.movie_id) AS n_rated_movies,
               COALESCE(SUM(s.n_ratings), 0) AS n_ratings,
               SUM(s.rating_sum) / SUM(s.n_ratings) AS avg_rating
        FROM movie_genres g
        LEFT JOIN movie_stats s ON s.movie_id = g.movie_id
        GROUP BY g.genre
        ORDER BY n_ratings DESC, genre
        """,
        ratings=ratings,
        movies=movies,
    )


def user_activity(ratings: DataFrame) -> DataFrame:
    """The long tail of user activity: how many users gave exactly k ratings, for each k.

    Columns: `USER_ACTIVITY_COLUMNS`, ordered by ratings_per_user.
    """
    return ratings.sparkSession.sql(
        """
        WITH per_user AS (SELECT user_id, COUNT(*) AS n FROM {ratings} GROUP BY user_id)
        SELECT n AS ratings_per_user, COUNT(*) AS n_users
        FROM per_user
        GROUP BY n
        ORDER BY n
        """,
        ratings=ratings,
    )


def user_activity_stats(ratings: DataFrame) -> DataFrame:
    """One row summarising ratings per user: min, quartiles, p90, p99, max, mean, head share.

    Percentiles are exact, interpolated linearly between the ordered per-user counts (Spark's
    `percentile`). top_10pct_share is the share of all ratings given by the ceil(10 %) most
    active users (ties broken by user_id).
    """
    return ratings.sparkSession.sql(
        """
        WITH per_user AS (SELECT user_id, COUNT(*) AS n FROM {ratings} GROUP BY user_id),
        ranked AS (
          SELECT n,
                 ROW_NUMBER() OVER (ORDER BY n DESC, user_id) AS position,
                 COUNT(*) OVER () AS n_users,
                 SUM(n) OVER () AS n_ratings
          FROM per_user
        )
        SELECT MIN(n) AS min, percentile(n, 0.25) AS p25, percentile(n, 0.5) AS median,
               percentile(n, 0.75) AS p75, percentile(n, 0.9) AS p90, percentile(n, 0.99) AS p99,
               MAX(n) AS max, AVG(n) AS mean,
               SUM(CASE WHEN position <= CEIL(n_users * :fraction) THEN n ELSE 0 END) / MAX(n_ratings)
                 AS top_10pct_share
        FROM ranked
        """,
        args={"fraction": TOP_USER_FRACTION},
        ratings=ratings,
    )


def ratings_overview(ratings: DataFrame) -> DataFrame:
    """One row of headline numbers of the rating matrix: counts, global mean, time span, sparsity.

    n_users and n_movies count the users and movies that have a rating (the rows and columns of
    the matrix that ALS factorises); n_pairs counts distinct (user, movie) cells, so a duplicate
    rating cannot push density above 1. density = n_pairs / (n_users · n_movies) and
    sparsity = 1 − density; both are null for an empty table. first_rated_at and last_rated_at
    are ISO 8601 strings in UTC, whatever the session time zone.
    """
    return ratings.sparkSession.sql(
        """
        WITH totals AS (
          SELECT COUNT(*) AS n_ratings, COUNT(DISTINCT user_id) AS n_users,
                 COUNT(DISTINCT movie_id) AS n_movies, COUNT(DISTINCT user_id, movie_id) AS n_pairs,
                 AVG(rating) AS global_mean, MIN(rated_at) AS first_rated_at, MAX(rated_at) AS last_rated_at
          FROM {ratings}
        )
        SELECT n_ratings, n_users, n_movies, n_pairs, global_mean,
               date_format(to_utc_timestamp(first_rated_at, current_timezone()), "yyyy-MM-dd'T'HH:mm:ss'Z'")
                 AS first_rated_at,
               date_format(to_utc_timestamp(last_rated_at, current_timezone()), "yyyy-MM-dd'T'HH:mm:ss'Z'")
                 AS last_rated_at,
               n_pairs / NULLIF(CAST(n_users AS DOUBLE) * n_movies, 0) AS density,
               1 - n_pairs / NULLIF(CAST(n_users AS DOUBLE) * n_movies, 0) AS sparsity
        FROM totals
        """,
        ratings=ratings,
    )


def analysis_tables(ratings: DataFrame, movies: DataFrame, config: AnalysisConfig) -> dict[str, DataFrame]:
    """The analysis tables by name (`TABLE_NAMES`), each to be written as `<run>/analysis/<name>/`."""
    tables = {
        "top_movies": top_rated_movies(ratings, movies, config.min_ratings, config.prior_weight),
        "rating_distribution": rating_distribution(ratings),
        "ratings_by_rating_year": ratings_by_rating_year(ratings),
        "ratings_by_release_year": ratings_by_release_year(ratings, movies),
        "genre_stats": genre_stats(ratings, movies),
        "user_activity": user_activity(ratings),
    }
    return tables


def summarize(ratings: DataFrame, movies: DataFrame, config: AnalysisConfig) -> dict[str, Any]:
    """Collects the small analysis results into one JSON-serialisable dict (`<run>/analysis/summary.json`).

    Acts: runs one Spark job per part; cache `ratings` first when it is expensive to recompute.
    Keys: params, counts, global_mean, density, sparsity, first_rated_at / last_rated_at (UTC ISO 8601),
    user_activity (the `user_activity_stats` row), and rating_distribution, ratings_by_rating_year,
    ratings_by_release_year, genre_stats, top_movies (the first `top_n` by rank) as lists of rows.
    Floats are plain floats; NaN and infinities become null.
    """
    overview = _row(ratings_overview(ratings))
    catalogue = movies.sparkSession.sql("SELECT COUNT(*) AS n FROM {movies}", movies=movies).first()
    tables = analysis_tables(ratings, movies, config)
    return {
        "params": asdict(config),
        "counts": {
            "ratings": overview["n_ratings"],
            "users": overview["n_users"],
            "movies": overview["n_movies"],
            "catalogue_movies": _jsonable(catalogue["n"]),
        },
        "global_mean": overview["global_mean"],
        "density": overview["density"],
        "sparsity": overview["sparsity"],
        "first_rated_at": overview["first_rated_at"],
        "last_rated_at": overview["last_rated_at"],
        "user_activity": _row(user_activity_stats(ratings)),
        "rating_distribution": _rows(tables["rating_distribution"]),
        "ratings_by_rating_year": _rows(tables["ratings_by_rating_year"]),
        "ratings_by_release_year": _rows(tables["ratings_by_release_year"]),
        "genre_stats": _rows(tables["genre_stats"]),
        "top_movies": _rows(tables["top_movies"].limit(config.top_n)),
    }


def _rows(df: DataFrame) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in row.asDict().items()} for row in df.collect()]


def _row(df: DataFrame) -> dict[str, Any]:
    rows = _rows(df)
    if len(rows) != 1:
        raise RuntimeError(f"expected one row, got {len(rows)}")
    return rows[0]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _jsonable(float(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
