"""I-AutoRec in PyTorch, trained through Spark's `TorchDistributor`: the deep rating family.

I-AutoRec (Sedhain et al. 2015) encodes each movie's column of the user x movie rating matrix,
r_i in R^n (0 where unrated), through one sigmoid hidden layer and decodes every user's rating:

    h_i = sigmoid(V r_i + c)            (the movie's code, `hidden` wide)
    r^_ui = W_u . h_i + b_u             clipped to the release's rating scale
    min  sum_{(u,i) observed} (r_ui - r^_ui)^2 + l2/2 (|W|^2 + |V|^2)

trained full batch with Adam for `epochs` steps. We chose it over Mult-VAE by measurement: it is the
published deep model that attacks RMSE (ML-1M 0.831 vs biased MF 0.845), and bench/models.py shows
it on ml-100k u1..u5 beside bias_als. The decoder makes it a factor model (user vector W_u, user
offset b_u, movie vector h_i), so top-N, explanations ("because you rated") and similar movies reuse
`topn` on the codes. A movie unseen in training is encoded from an empty column; a user unseen
in training gets the training mean.

Training is a `TorchDistributor` run (local mode, one process here, the same call on EMR) of
`train_autorec`, which reads the fold's Parquet itself (only paths cross the process boundary) and
writes `<model_dir>/autorec.npz`. Uses a GPU when torch sees one, else CPU; same seed, same weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import columns as C
from .topn import FEATURES, OFFSET, ItemMatrix, similar_movies, top_n_from_factors
from .torch_training import run_on_distributor, write_training_ratings

_WEIGHTS = "autorec.npz"


@dataclass(frozen=True)
class AutoRecConfig:
    """Hyperparameters of `TorchAutoRec`: one grid point of the `torch_autorec` family."""

    hidden: int = 200
    """Width of the hidden layer: the length of each movie's code (>= 1)."""
    l2: float = 30.0
    """lambda (>= 0): weight decay on both weight matrices, against the summed squared error."""
    epochs: int = 150
    """Full-batch Adam steps (>= 1)."""
    learning_rate: float = 0.01
    """Adam's step size (> 0)."""

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name, low_ok in (("l2", True), ("learning_rate", False)):
            value = getattr(self, name)
            real = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not real or value < 0 or (value == 0 and not low_ok):
                bound = ">= 0" if low_ok else "> 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        """The grid point as JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> AutoRecConfig:
        """Inverse of `to_dict`; unknown keys are an error naming them, missing ones default."""
        unknown = set(doc) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown torch_autorec hyperparameters: {', '.join(sorted(unknown))}")
        return cls(**doc)


def train_autorec(train_path: str, model_dir: str, config: dict[str, Any], seed: int) -> dict[str, Any]:
    """The training function `TorchDistributor` runs: Parquet ratings in, `<model_dir>/autorec.npz` out.

    Top-level and importable, so the distributor pickles it by reference. Returns timings, the device
    (`cuda` when torch sees a GPU, else `cpu`) and the final training loss.
    """
    started = time.perf_counter()
    import torch

    import_seconds = time.perf_counter() - started
    import pyarrow.parquet as pq

    cfg = AutoRecConfig.from_dict(config)
    table = pq.read_table(train_path, columns=[C.USER_ID, C.MOVIE_ID, C.RATING]).to_pandas()
    users = np.sort(table[C.USER_ID].unique()).astype(np.int64)
    movies = np.sort(table[C.MOVIE_ID].unique()).astype(np.int64)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fit_started = time.perf_counter()
    torch.manual_seed(seed)
    rows = torch.as_tensor(np.searchsorted(movies, table[C.MOVIE_ID].to_numpy()), device=device)
    cols = torch.as_tensor(np.searchsorted(users, table[C.USER_ID].to_numpy()), device=device)
    ratings = torch.zeros((movies.size, users.size), dtype=torch.float32, device=device)
    ratings[rows, cols] = torch.as_tensor(table[C.RATING].to_numpy(), dtype=torch.float32, device=device)
    observed = (ratings != 0).float()  # ratings are >= 0.5: 0 means unrated
    encoder = torch.nn.Linear(users.size, cfg.hidden).to(device)
    decoder = torch.nn.Linear(cfg.hidden, users.size).to(device)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.learning_rate)
    loss = torch.tensor(0.0)
    for _ in range(cfg.epochs):
        optimizer.zero_grad()
        error = (decoder(torch.sigmoid(encoder(ratings))) - ratings) * observed
        penalty = encoder.weight.square().sum() + decoder.weight.square().sum()
        loss = error.square().sum() + cfg.l2 / 2 * penalty
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        codes = torch.sigmoid(encoder(ratings)).cpu().numpy()
        empty = torch.sigmoid(encoder.bias).cpu().numpy()  # the code of a column with no ratings
        user_vectors = decoder.weight.cpu().numpy()
        user_offsets = decoder.bias.cpu().numpy()
    fit_seconds = time.perf_counter() - fit_started
    os.makedirs(model_dir, exist_ok=True)
    np.savez(
        os.path.join(model_dir, _WEIGHTS),
        users=users,
        movies=movies,
        codes=codes,
        empty_code=empty,
        user_vectors=user_vectors,
        user_offsets=user_offsets,
        global_mean=float(table[C.RATING].mean()),
        **{f"cfg_{k}": v for k, v in cfg.to_dict().items()},
    )
    return {
        "torch_version": torch.__version__,
        "device": device.type,
        "torch_import_seconds": import_seconds,
        "fit_seconds": fit_seconds,
        "final_loss": float(loss.detach().cpu()),
        "n_users": int(users.size),
        "n_movies": int(movies.size),
    }


class TorchAutoRecModel:
    """A fitted I-AutoRec: rating predictions, top-N with explanations, similar movies."""

    family: ClassVar[str] = "torch_autorec"
    objective: ClassVar[str] = "rmse"
    score_label: ClassVar[str] = "predicted rating"

    def __init__(
        self, weights: dict[str, np.ndarray], config: AutoRecConfig, scale, info: dict | None = None
    ):
        self.users = weights["users"]
        self.movies = weights["movies"]
        self.codes = weights["codes"]
        """Movie codes h_i (m x hidden): the movie vectors for top-N, explanations and similar movies."""
        self.empty_code = weights["empty_code"]
        self.user_vectors = weights["user_vectors"]
        self.user_offsets = weights["user_offsets"]
        self.global_mean = float(weights["global_mean"])
        self.config = config
        self.scale = (float(scale[0]), float(scale[1]))
        self.info = info or {}
        """Training facts from `train_autorec` (device, torch version, seconds, loss)."""

    def _clip(self, column: Column) -> Column:
        return F.least(F.greatest(column, F.lit(self.scale[0])), F.lit(self.scale[1]))

    def _user_frame(self, spark: SparkSession) -> DataFrame:
        pdf = pd.DataFrame(
            {
                C.USER_ID: self.users.astype(np.int32),
                FEATURES: self.user_vectors.astype(np.float64).tolist(),  # Python floats: Spark's verifier
                OFFSET: self.user_offsets.astype(np.float64),
            }
        )
        return spark.createDataFrame(pdf, f"{C.USER_ID} int, {FEATURES} array<double>, {OFFSET} double")

    def item_matrix(self) -> ItemMatrix:
        """The movie codes as an `ItemMatrix` (no offsets; every trained movie is a candidate)."""
        return ItemMatrix(
            ids=self.movies,
            vectors=self.codes.astype(np.float64),
            offsets=np.zeros(self.movies.size),
            candidate=np.ones(self.movies.size, dtype=bool),
        )

    def transform(self, pairs: DataFrame) -> DataFrame:
        """`pairs` plus `prediction` = clip(W_u . h_i + b_u); unknown movie: h of an empty column;
        unknown user: the training mean. Lazy; row order is not kept."""
        if C.PREDICTION in pairs.columns:
            raise ValueError(f"pairs already have a {C.PREDICTION!r} column")
        spark = pairs.sparkSession
        movies = spark.createDataFrame(
            pd.DataFrame(
                {C.MOVIE_ID: self.movies.astype(np.int32), "_code": self.codes.astype(np.float64).tolist()}
            ),
            f"{C.MOVIE_ID} int, _code array<double>",
        )
        users = self._user_frame(spark)
        empty = F.array(*(F.lit(float(v)) for v in self.empty_code))
        code = F.coalesce(F.col("_code"), empty)
        dot = F.aggregate(
            F.zip_with(F.col(FEATURES), code, lambda a, b: a * b), F.lit(0.0), lambda s, x: s + x
        )
        raw = F.when(F.col(FEATURES).isNull(), F.lit(self.global_mean)).otherwise(dot + F.col(OFFSET))
        joined = pairs.join(F.broadcast(users), C.USER_ID, "left").join(
            F.broadcast(movies), C.MOVIE_ID, "left"
        )
        return joined.select(*pairs.columns, self._clip(raw).alias(C.PREDICTION))

    def recommend_for_users(
        self, users: DataFrame, n: int, *, exclude: DataFrame, explain: bool = False
    ) -> DataFrame:
        """Top-`n` by predicted rating (clipped) for the trained users in `users`, none in `exclude`.
        Lazy. See `topn.top_n_from_factors`; explanations use cosine of the movie codes."""
        vectors = self._user_frame(users.sparkSession).join(users.select(C.USER_ID).distinct(), C.USER_ID)
        return top_n_from_factors(vectors, self.item_matrix(), exclude, n, explain=explain, clip=self.scale)

    def similar_movies(self, movie_id: int, n: int) -> list[tuple[int, float]]:
        """The `n` movies whose codes are closest (cosine) to `movie_id`'s."""
        return similar_movies(self.item_matrix(), movie_id, n)

    def save(self, path: str) -> None:
        """Writes `autorec.npz` (weights, config, scale) under the local folder `path`."""
        os.makedirs(path, exist_ok=True)
        np.savez(
            os.path.join(path, _WEIGHTS),
            users=self.users,
            movies=self.movies,
            codes=self.codes,
            empty_code=self.empty_code,
            user_vectors=self.user_vectors,
            user_offsets=self.user_offsets,
            global_mean=self.global_mean,
            scale=np.array(self.scale),
            **{f"cfg_{k}": v for k, v in self.config.to_dict().items()},
        )

    @classmethod
    def load(cls, path: str, scale=None, info: dict | None = None) -> TorchAutoRecModel:
        """Reads `<path>/autorec.npz` as `train_autorec` or `save` wrote it (`scale` if it has none)."""
        with np.load(os.path.join(path, _WEIGHTS)) as saved:
            weights = {k: saved[k] for k in saved.files}
        config = AutoRecConfig.from_dict(
            {f.name: weights[f"cfg_{f.name}"].item() for f in fields(AutoRecConfig)}
        )
        if "scale" in weights:
            scale = tuple(weights["scale"].tolist())
        if scale is None:
            raise ValueError(f"{path} has no rating scale; pass scale=(min, max)")
        return cls(weights, config, scale, info)

    def unpersist(self) -> None:
        """Nothing cached in Spark."""


class TorchAutoRec:
    """Estimator of `TorchAutoRecModel`: one `TorchDistributor` run of `train_autorec`.

    `fit_path(train_path, model_dir)` is the pipeline form (the fold is already Parquet);
    `fit(ratings)` writes the DataFrame to `<work_dir>/train` first.
    """

    def __init__(
        self, config: AutoRecConfig, work_dir: str, scale, *, seed: int = 42, num_processes: int = 1
    ):
        self.config = config
        self.work_dir = work_dir
        self.scale = scale
        self.seed = seed
        self.num_processes = num_processes

    def fit_path(self, train_path: str, model_dir: str) -> TorchAutoRecModel:
        """Trains on the Parquet ratings at `train_path` via `TorchDistributor`; weights go to `model_dir`."""
        info = run_on_distributor(
            train_autorec,
            train_path,
            model_dir,
            self.config.to_dict(),
            self.seed,
            num_processes=self.num_processes,
        )
        return TorchAutoRecModel.load(model_dir, self.scale, info)

    def fit(self, ratings: DataFrame) -> TorchAutoRecModel:
        """Writes `ratings` as Parquet under `work_dir`, then `fit_path`."""
        return self.fit_path(*write_training_ratings(ratings, self.work_dir))
