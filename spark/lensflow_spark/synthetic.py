"""Synthetic MovieLens releases of any size, in ml-25m's CSV format, deterministic by seed.

`write_release(folder, n_ratings, seed)` writes ratings.csv (userId,movieId,rating,timestamp),
movies.csv (movieId,title,genres), tags.csv, links.csv and README.txt as GroupLens ships ml-25m,
so the real reader path (`readers.read_dataset("ml-25m", ...)`) reads it unchanged. The shape:

* users and movies in ml-25m's ratios to ratings (162,541 users and 62,423 movies for 25,000,095);
* user activity and movie popularity are power laws (every user has >= 20 ratings, as in ml-25m;
  a few hundred movies get most ratings, a long tail gets a handful), no pair is rated twice;
* ratings are half stars whose marginal distribution is ml-25m's (`ML25M_RATING_SHARES`);
* timestamps span 1995-2019 with each user active over a stretch of it; titles carry a release
  year, movies one to three of ml-25m's genres;
* ratings come from a planted model, r = mu + b_u + b_i + <p_u, q_i> + noise (rank `PLANTED_RANK`),
  mapped to half stars by quantiles, so both RMSE and ranking have something to find: ALS can beat
  the bias baseline, and the bias baseline the global mean.

Memory stays flat in the size: the per-user and per-movie parameters are arrays (a few MB at ml-25m
scale), the ratings are generated and appended to the CSV one block of users at a time. Run it as
`python -m lensflow_spark.synthetic --ratings 25000000 --seed 42 --output DIR`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ML25M_RATINGS = 25_000_095
ML25M_USERS = 162_541
ML25M_MOVIES = 62_423
MIN_RATINGS_PER_USER = 20
"""ml-25m's README: every selected user rated at least 20 movies."""
HALF_STARS = np.arange(1, 11) / 2.0
ML25M_RATING_SHARES = np.array(
    [393_068, 776_815, 399_490, 1_640_868, 1_262_797, 4_896_928, 3_177_318, 6_639_798, 2_200_539, 3_612_474],
    dtype=np.float64,
)
"""Counts of 0.5, 1.0, ..., 5.0 stars in ml-25m's ratings.csv (they sum to its 25,000,095 ratings)."""
GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"
FIRST_TIMESTAMP = 789_652_009  # 1995-01-09, ml-25m's first rating
LAST_TIMESTAMP = 1_574_327_703  # 2019-11-21, its last
PLANTED_RANK = 8
INTERACTION_VARIANCE = 1.0
"""Variance of <p_u, q_i>; user and movie biases have 0.35^2 and 0.4^2, the noise NOISE_SD^2."""
NOISE_SD = 0.35
USER_BLOCK = 20_000
"""Users generated (and ratings written) per block: bounds memory at a few hundred MB for heavy users."""
MAX_DENSITY = 0.1
"""Largest share of the users x movies cells rated (ml-25m: 0.25%; ml-latest-small: 1.7%). At 10%
the planted structure is learnable at test sizes: at 60k ratings ALS reaches RMSE 0.73 against the
bias baseline's 0.80 (at 4%, 0.80 against 0.81)."""
HEAVY_SHARE = 50
"""A user rating over 1/HEAVY_SHARE of the catalogue is drawn without replacement directly."""
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


def parse_size(text: str) -> int:
    """`25000000`, `25M`, `100k` or `1.5M` as a number of ratings; a clear error for anything else."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"ratings must be a count such as 1000000, 100k or 25M, not {text!r}")
    value = float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[match.group(2).lower()]
    return int(round(value))


@dataclass(frozen=True)
class Shape:
    """Sizes of one synthetic release, scaled from ml-25m's."""

    n_ratings: int
    n_users: int
    n_movies: int

    @classmethod
    def for_ratings(cls, n_ratings: int) -> Shape:
        """ml-25m's users and movies per rating, while that leaves the matrix at most `MAX_DENSITY`
        full (down to about 620k ratings); below, both grow by one factor, keeping their ratio."""
        if isinstance(n_ratings, bool) or not isinstance(n_ratings, int) or n_ratings < 1000:
            raise ValueError(f"a synthetic release needs at least 1000 ratings, got {n_ratings!r}")
        users = n_ratings * ML25M_USERS / ML25M_RATINGS
        movies = n_ratings * ML25M_MOVIES / ML25M_RATINGS
        grow = max(1.0, math.sqrt(n_ratings / (MAX_DENSITY * users * movies)))
        # Tiny releases: every user still needs 20 ratings, of distinct movies.
        n_users = min(round(users * grow), n_ratings // MIN_RATINGS_PER_USER)
        return cls(n_ratings, n_users, max(round(movies * grow), 2 * MIN_RATINGS_PER_USER))


def _user_counts(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Ratings per user: 20 plus a Pareto tail (ml-25m's median user has ~70), summing exactly to n."""
    cap = max(MIN_RATINGS_PER_USER, shape.n_movies // 2)
    extra = rng.pareto(1.3, shape.n_users) + 1e-9
    budget = shape.n_ratings - MIN_RATINGS_PER_USER * shape.n_users
    counts = MIN_RATINGS_PER_USER + np.minimum(
        np.floor(extra / extra.sum() * budget), cap - MIN_RATINGS_PER_USER
    )
    counts = counts.astype(np.int64)
    # Hand out what flooring and the cap left over, one rating each to the users below the cap.
    while (missing := shape.n_ratings - int(counts.sum())) > 0:
        room = np.flatnonzero(counts < cap)
        if room.size == 0:
            raise ValueError(f"{shape.n_ratings} ratings do not fit {shape.n_users} users x {cap} movies")
        counts[rng.choice(room, size=min(missing, room.size), replace=False)] += 1
    return counts


def _rating_cuts(shares: np.ndarray) -> np.ndarray:
    """Quantiles (of a score's distribution) between consecutive half stars."""
    return np.cumsum(shares / shares.sum())[:-1]


@dataclass(frozen=True)
class _Planted:
    """The planted model's parameters and the score -> half-star cut points."""

    popularity_cdf: np.ndarray
    user_bias: np.ndarray
    movie_bias: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray
    user_start: np.ndarray
    user_span: np.ndarray
    cuts: np.ndarray | None = None

    def scores(self, rng: np.random.Generator, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        interaction = np.einsum("ij,ij->i", self.user_factors[users], self.movie_factors[movies])
        noise = rng.normal(0.0, NOISE_SD, users.size)
        return self.user_bias[users] + self.movie_bias[movies] + interaction + noise


def _plant(rng: np.random.Generator, shape: Shape) -> _Planted:
    # Zipf-like popularity over a random order of movie ids, so popularity is not id order.
    ranks = rng.permutation(shape.n_movies) + 1
    weights = ranks.astype(np.float64) ** -1.0
    log_pop = np.log(weights / weights.max())
    factor_scale = math.sqrt(INTERACTION_VARIANCE / PLANTED_RANK)
    return _Planted(
        popularity_cdf=np.cumsum(weights / weights.sum()),
        user_bias=rng.normal(0.0, 0.35, shape.n_users),
        # Popular movies rate a little higher, as in MovieLens.
        movie_bias=rng.normal(0.0, 0.4, shape.n_movies) + 0.04 * (log_pop - log_pop.mean()),
        user_factors=rng.normal(0.0, factor_scale, (shape.n_users, PLANTED_RANK)),
        movie_factors=rng.normal(0.0, factor_scale, (shape.n_movies, PLANTED_RANK)),
        user_start=rng.uniform(FIRST_TIMESTAMP, LAST_TIMESTAMP, shape.n_users),
        user_span=rng.exponential(200 * 86_400.0, shape.n_users),
    )


def _pairs_for_block(
    rng: np.random.Generator, planted: _Planted, counts: np.ndarray, first_user: int
) -> np.ndarray:
    """Distinct (user, movie) keys, user * 2^32 + movie, sorted, exactly counts[u] per user.

    Movies are drawn by popularity without replacement. Light users draw with replacement and redraw
    their few duplicates; heavy users (over 1/50 of the catalogue) would redraw the popular head for
    ever, so they take the exact weighted sample without replacement (smallest Exp(1)/weight keys).
    """
    cdf = planted.popularity_cdf
    n_movies = cdf.size
    weights = np.diff(cdf, prepend=0.0)
    heavy = counts * HEAVY_SHARE > n_movies
    done = []
    for u in np.flatnonzero(heavy):
        picked = np.argpartition(rng.exponential(size=n_movies) / weights, counts[u])[: counts[u]]
        done.append(((u + first_user) << 32) | picked.astype(np.int64))
    finished = heavy.copy()
    deficit = np.where(finished, 0, counts)
    pending = np.empty(0, dtype=np.int64)
    while deficit.any():
        users = np.repeat(np.arange(counts.size, dtype=np.int64), deficit)
        movies = np.minimum(np.searchsorted(cdf, rng.random(users.size), side="right"), n_movies - 1)
        pending = np.unique(np.concatenate([pending, ((users + first_user) << 32) | movies]))
        owner = (pending >> 32) - first_user
        deficit = np.where(finished, 0, counts - np.bincount(owner, minlength=counts.size))
        complete = deficit[owner] == 0
        done.append(pending[complete])
        pending = pending[~complete]
        finished |= deficit == 0
    return np.sort(np.concatenate(done))


def _calibrate(rng: np.random.Generator, planted: _Planted, keys: np.ndarray) -> np.ndarray:
    """Score cut points that give ml-25m's half-star shares, from the release's own first block of
    pairs: users are exchangeable, so it has the whole release's mix of popular and tail movies."""
    return np.quantile(planted.scores(rng, keys >> 32, keys & 0xFFFFFFFF), _rating_cuts(ML25M_RATING_SHARES))


def _write_movies(rng: np.random.Generator, folder: Path, n_movies: int) -> None:
    years = np.clip(np.round(2019 - rng.exponential(18.0, n_movies)), 1902, 2019).astype(int)
    n_genres = rng.choice([0, 1, 2, 3], size=n_movies, p=[0.08, 0.42, 0.32, 0.18])
    with open(folder / "movies.csv", "w", encoding="utf-8", newline="\n") as f:
        f.write("movieId,title,genres\n")
        for i in range(n_movies):
            genres = "|".join(sorted(rng.choice(GENRES, size=n_genres[i], replace=False))) or NO_GENRES
            f.write(f"{i + 1},Synthetic Movie {i + 1} ({years[i]}),{genres}\n")
    with open(folder / "links.csv", "w", encoding="utf-8", newline="\n") as f:
        f.write("movieId,imdbId,tmdbId\n")
        f.writelines(f"{i + 1},{i + 1:07d},{i + 1}\n" for i in range(n_movies))
    with open(folder / "tags.csv", "w", encoding="utf-8", newline="\n") as f:
        f.write("userId,movieId,tag,timestamp\n")


def _write_ratings(
    rng: np.random.Generator, planted: _Planted, counts: np.ndarray, path: Path, first_keys: np.ndarray
) -> None:
    assert planted.cuts is not None
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for first in range(0, counts.size, USER_BLOCK):
            block = counts[first : first + USER_BLOCK]
            keys = first_keys if first == 0 else _pairs_for_block(rng, planted, block, first)
            users, movies = keys >> 32, keys & 0xFFFFFFFF
            stars = HALF_STARS[np.searchsorted(planted.cuts, planted.scores(rng, users, movies))]
            times = planted.user_start[users] + rng.random(users.size) * planted.user_span[users]
            times = np.minimum(times, LAST_TIMESTAMP).astype(np.int64)
            _write_csv_block(f, users + 1, movies + 1, stars, times)


def _write_csv_block(f, users: np.ndarray, movies: np.ndarray, stars: np.ndarray, times: np.ndarray) -> None:
    # Half stars as ml-25m writes them (4.0, 4.5). One write per block: %-formatting of Python ints
    # measured 3.5x faster than numpy's char functions and 1.5x faster than pandas' to_csv.
    star_text = _STAR_TEXT[(stars * 2).astype(np.int64) - 1].tolist()
    rows = zip(users.tolist(), movies.tolist(), star_text, times.tolist(), strict=True)
    f.write("".join(map("%d,%d,%s,%d\n".__mod__, rows)))


_STAR_TEXT = np.array([f"{s:.1f}" for s in HALF_STARS])

_README = """Synthetic MovieLens release written by lensflow ({n_ratings} ratings, seed {seed}).

Not GroupLens data: users, movies and ratings are generated from a planted low-rank model with
ml-25m's file formats, size ratios and rating distribution. {n_users} users, {n_movies} movies.
"""


def write_release(folder: str | os.PathLike, n_ratings: int, seed: int = 42) -> Shape:
    """Writes a synthetic release of exactly `n_ratings` ratings into `folder` (created if needed).

    Same `n_ratings` and `seed`, same bytes. Files are written under temporary names and renamed at
    the end, so a folder with ratings.csv holds a complete release.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    shape = Shape.for_ratings(n_ratings)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, shape)
    planted = _plant(rng, shape)
    first_keys = _pairs_for_block(rng, planted, counts[:USER_BLOCK], 0)
    planted = _Planted(**{**planted.__dict__, "cuts": _calibrate(rng, planted, first_keys)})
    _write_movies(rng, out, shape.n_movies)
    (out / "README.txt").write_text(_README.format(seed=seed, **shape.__dict__), encoding="utf-8")
    partial = out / "ratings.csv.partial"
    _write_ratings(rng, planted, counts, partial, first_keys)
    partial.replace(out / "ratings.csv")
    return shape


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="lensflow_spark.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--ratings", required=True, help="number of ratings, e.g. 1000000, 100k or 25M")
    p.add_argument("--seed", type=int, default=42, help="random seed (>= 0); same seed, same release")
    p.add_argument("--output", required=True, help="folder to write the release into")
    args = p.parse_args(argv)
    try:
        shape = write_release(args.output, parse_size(args.ratings), args.seed)
    except ValueError as err:
        p.error(str(err))
    sys.stdout.write(
        f"{shape.n_ratings} ratings, {shape.n_users} users, {shape.n_movies} movies in {args.output}\n"
    )


if __name__ == "__main__":
    main()
