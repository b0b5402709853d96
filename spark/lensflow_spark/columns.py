"""Column names of the canonical tables, in one place."""

USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"
RATED_AT = "rated_at"
TITLE = "title"
GENRES = "genres"
REASON = "reason"
