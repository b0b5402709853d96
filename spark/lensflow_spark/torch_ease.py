"""EASE in PyTorch, trained through Spark's `TorchDistributor`: the deep-learning family's ranking model.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders") is a one-layer linear autoencoder of the
binary user x movie matrix X, B in R^{m x m} with a zero diagonal (no movie may predict itself):

    min_B |X - X B|_F^2 + lambda |B|_F^2   s.t. diag(B) = 0
    closed form: P = (X^T X + lambda I)^-1,   B_ij = -P_ij / P_jj (i != j),   B_jj = 0

and a user's scores are x_u B. We chose it over Mult-VAE/BiVAE and BPR by measurement (bench/
results/models.md): on ml-100k with the Recommenders protocol it reaches NDCG@10 above BiVAE's
published 0.475 with one matrix inverse, no epochs and no seed to tune, and it runs in seconds on
CPU. Training is a `TorchDistributor` run (local mode, one process here, the same call on EMR); it
uses a GPU when torch sees one, and CPU otherwise.

The training function reads the fold's Parquet files itself (pyarrow), so only paths cross the
process boundary, and writes B with the movie ids to `<model_dir>/ease.npz`. Serving scores the
users' rated movies against B on the driver, in blocks of users: B is m^2 floats (11 MB for
ml-100k, 378 MB for ml-latest-small's 9.7k movies), so catalogues up to ~20k movies; `min_support`
shrinks m. Served scores are x_u B clipped to [0, 1] after ranking (a reconstructed interaction,
not a rating), labelled `ease score`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from . import columns as C
from .topn import ItemWeights, top_n_from_item_weights
from .torch_training import run_on_distributor, write_training_ratings

SCORE_RANGE = (0.0, 1.0)
_WEIGHTS = "ease.npz"


@dataclass(frozen=True)
class EASEConfig:
    """Hyperparameters of `TorchEASE`: one grid point of the `torch_ease` family."""

    l2: float = 500.0
    """lambda (> 0): the ridge on B; larger shrinks towards popularity-like lists."""
    min_support: int = 0
    """Movies with fewer training ratings than this are left out of B (never recommended; >= 0)."""

    def __post_init__(self) -> None:
        ok = isinstance(self.l2, (int, float)) and not isinstance(self.l2, bool) and math.isfinite(self.l2)
        if not ok or self.l2 <= 0:
            raise ValueError(f"l2 must be a finite number > 0, got {self.l2!r}")
        object.__setattr__(self, "l2", float(self.l2))
        if (
            not isinstance(self.min_support, int)
            or isinstance(self.min_support, bool)
            or self.min_support < 0
        ):
            raise ValueError(f"min_support must be an int >= 0, got {self.min_support!r}")

    def to_dict(self) -> dict[str, Any]:
        """The grid point as JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EASEConfig:
        """Inverse of `to_dict`; unknown keys are an error naming them."""
        unknown = set(doc) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown torch_ease hyperparameters: {', '.join(sorted(unknown))}")
        return cls(**doc)


def train_ease(train_path: str, model_dir: str, l2: float, min_support: int) -> dict[str, Any]:
    """The training function `TorchDistributor` runs: Parquet fold in, `<model_dir>/ease.npz` out.

    Top-level and importable, so the distributor can pickle it by reference. Returns timings and
    the device used (`cuda` when torch sees a GPU, else `cpu`).
    """
    started = time.perf_counter()
    import torch

    import_seconds = time.perf_counter() - started
    import pyarrow.parquet as pq

    table = pq.read_table(train_path, columns=[C.USER_ID, C.MOVIE_ID]).to_pandas()
    support = table.groupby(C.MOVIE_ID).size()
    movies = np.sort(support[support >= max(min_support, 1)].index.to_numpy(dtype=np.int64))
    table = table[table[C.MOVIE_ID].isin(movies)]
    users = np.sort(table[C.USER_ID].unique())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fit_started = time.perf_counter()
    rows = torch.as_tensor(np.searchsorted(users, table[C.USER_ID].to_numpy()), device=device)
    cols = torch.as_tensor(np.searchsorted(movies, table[C.MOVIE_ID].to_numpy()), device=device)
    x = torch.zeros((users.size, movies.size), dtype=torch.float64, device=device)
    x[rows, cols] = 1.0
    gram = x.T @ x
    gram += l2 * torch.eye(movies.size, dtype=torch.float64, device=device)
    precision = torch.linalg.inv(gram)
    weights = -precision / torch.diagonal(precision)
    weights.fill_diagonal_(0.0)
    result = weights.to(torch.float32).cpu().numpy()
    fit_seconds = time.perf_counter() - fit_started
    os.makedirs(model_dir, exist_ok=True)
    np.savez(os.path.join(model_dir, _WEIGHTS), movies=movies, weights=result, l2=l2, min_support=min_support)
    return {
        "torch_version": torch.__version__,
        "device": device.type,
        "torch_import_seconds": import_seconds,
        "fit_seconds": fit_seconds,
        "n_movies": int(movies.size),
    }


class TorchEASEModel:
    """A fitted EASE: top-N with explanations, similar movies. No rating predictions."""

    family: ClassVar[str] = "torch_ease"
    objective: ClassVar[str] = "ndcg_at_k"
    score_label: ClassVar[str] = "ease score"

    def __init__(self, movies: np.ndarray, weights: np.ndarray, config: EASEConfig, info: dict | None = None):
        self.movies = movies
        self.weights = weights
        self.config = config
        self.info = info or {}
        """Training facts from `train_ease` (device, torch version, seconds)."""
        self._position = pd.Series(np.arange(movies.size), index=movies)

    def _history(self, rated: list[int] | np.ndarray) -> np.ndarray:
        known = self._position.reindex(np.asarray(rated, dtype=np.int64)).dropna()
        return known.to_numpy(dtype=np.int64)

    def recommend_for_users(
        self, users: DataFrame, n: int, *, exclude: DataFrame, explain: bool = False
    ) -> DataFrame:
        """Top-`n` (user_id, movie_id, score, rank, because_movie_id) for the users in `users`.

        A user's history is their rows in `exclude` (the training ratings): scores are x_u B, rated
        movies are never listed, ties go to the smaller movie id, scores are clipped to [0, 1] after
        ranking. `because_movie_id` is the rated movie contributing most to the score (argmax_j
        B_ji over the history). Users with no known rated movie get no rows. Lazy: blocks of users
        are scored on the executors against a broadcast B (`topn.top_n_from_item_weights`).
        """
        items = ItemWeights(self.movies, self.weights)
        return top_n_from_item_weights(users, items, exclude, n, explain=explain, clip=SCORE_RANGE)

    def similar_movies(self, movie_id: int, n: int) -> list[tuple[int, float]]:
        """The `n` movies with the largest cosine between their columns of B and `movie_id`'s."""
        where = np.flatnonzero(self.movies == movie_id)
        if where.size == 0:
            raise ValueError(f"movie {movie_id} is not in the model; similar movies need a trained movie")
        norms = np.linalg.norm(self.weights, axis=0)
        similarity = (self.weights.T @ self.weights[:, where[0]]) / np.maximum(norms * norms[where[0]], 1e-12)
        similarity[where[0]] = -np.inf
        order = np.lexsort((self.movies, -similarity))[:n]
        return [(int(self.movies[i]), float(similarity[i])) for i in order if np.isfinite(similarity[i])]

    def save(self, path: str) -> None:
        """Writes `ease.npz` under the local folder `path`."""
        os.makedirs(path, exist_ok=True)
        np.savez(
            os.path.join(path, _WEIGHTS), movies=self.movies, weights=self.weights, **self.config.to_dict()
        )

    @classmethod
    def load(cls, spark: SparkSession | None, path: str, info: dict | None = None) -> TorchEASEModel:
        """Reads `<path>/ease.npz` as `train_ease` or `save` wrote it."""
        with np.load(os.path.join(path, _WEIGHTS)) as saved:
            config = EASEConfig(l2=float(saved["l2"]), min_support=int(saved["min_support"]))
            return cls(saved["movies"], saved["weights"], config, info)

    def unpersist(self) -> None:
        """Nothing cached in Spark."""


class TorchEASE:
    """Estimator of `TorchEASEModel`: one `TorchDistributor` run of `train_ease`.

    `fit_path(train_path, model_dir)` is the pipeline form (the fold is already Parquet);
    `fit(ratings)` writes the DataFrame to `<work_dir>/train` first.
    """

    def __init__(self, config: EASEConfig, work_dir: str, *, num_processes: int = 1):
        self.config = config
        self.work_dir = work_dir
        self.num_processes = num_processes

    def fit_path(self, train_path: str, model_dir: str) -> TorchEASEModel:
        """Trains on the Parquet ratings at `train_path` via `TorchDistributor`; B lands in `model_dir`."""
        info = run_on_distributor(
            train_ease,
            train_path,
            model_dir,
            self.config.l2,
            self.config.min_support,
            num_processes=self.num_processes,
        )
        return TorchEASEModel.load(None, model_dir, info)

    def fit(self, ratings: DataFrame) -> TorchEASEModel:
        """Writes `ratings` as Parquet under `work_dir`, then `fit_path`."""
        return self.fit_path(*write_training_ratings(ratings, self.work_dir))
