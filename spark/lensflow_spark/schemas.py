"""One explicit StructType per MovieLens input file. Never inferSchema."""

from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

# ml-latest-small / ml-latest / ml-20m / ml-25m: CSV with a header row.
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

# ml-100k: u.data is tab-separated, u.item pipe-separated latin-1 (5 fields + 19 genre flags).
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
