"""One explicit StructType per MovieLens input file, field by field in file order. Never inferSchema.

The readers split each line into exactly these fields and convert each one to its field's type
(see `readers`): numbers as Spark's `try_cast` converts them, strings as they are, all
after trimming spaces. A field that is empty is missing; one that does not convert is unparseable.
Timestamps are whole unix seconds (UTC) in every release; the readers turn them into `rated_at`.
"""

from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

# Delimiters, encodings, headers and column names are in the contracts (`input_files.release_files`);
# these add the types, one field per column (a test keeps the two in step).

# ml-latest-small / ml-latest / ml-20m / ml-25m: UTF-8 CSV with a header row.
LATEST_RATINGS = StructType(
    [
        StructField("userId", IntegerType()),
        StructField("movieId", IntegerType()),
        StructField("rating", DoubleType()),
        StructField("timestamp", LongType()),
    ]
)
LATEST_MOVIES = StructType(
    [
        StructField("movieId", IntegerType()),
        StructField("title", StringType()),
        StructField("genres", StringType()),
    ]
)

# ml-100k: u.data is tab-separated, u.item pipe-separated latin-1 (5 fields + 19 genre flags, in the
# order of u.genre). No header rows.
ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]  # fmt: skip
ML100K_RATINGS = StructType(
    [
        StructField("userId", IntegerType()),
        StructField("movieId", IntegerType()),
        StructField("rating", DoubleType()),
        StructField("timestamp", LongType()),
    ]
)
ML100K_MOVIES = StructType(
    [
        StructField("movieId", IntegerType()),
        StructField("title", StringType()),
        StructField("releaseDate", StringType()),
        StructField("videoReleaseDate", StringType()),
        StructField("imdbUrl", StringType()),
    ]
    + [StructField(f"genre_{i}", IntegerType()) for i in range(len(ML100K_GENRES))]
)

# ml-1m / ml-10m: `::`-separated .dat files without header. ratings.dat is ASCII; movies.dat is
# latin-1 in ml-1m and UTF-8 in ml-10m.
DAT_RATINGS = StructType(
    [
        StructField("UserID", IntegerType()),
        StructField("MovieID", IntegerType()),
        StructField("Rating", DoubleType()),
        StructField("Timestamp", LongType()),
    ]
)
DAT_MOVIES = StructType(
    [
        StructField("MovieID", IntegerType()),
        StructField("Title", StringType()),
        StructField("Genres", StringType()),
    ]
)
