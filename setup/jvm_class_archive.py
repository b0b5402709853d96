"""The work a Spark JVM does while setup/install.sh records its CDS class archive.

Every Spark JVM lensflow starts on this machine (the warm engine, pytest's session, a local
spark-submit, the EMR test server's steps) spends seconds of CPU loading and verifying the same
~15,000 classes. A JVM started with `-XX:ArchiveClassesAtExit` writes the classes it loaded to an
archive that later JVMs map with `-XX:SharedArchiveFile` instead (JDK 17's dynamic CDS): a
test-sized ALS job in a fresh JVM took 10 s instead of 16 at C1 (the EMR test steps' tiers) and
about 15 s instead of 18 at the default tiers (bench/results/test-time.md). The archive only
has to hold the classes most jobs load, so this runs a little of each kind of work the jobs do, on
local files, without a network or an S3 server. A class it misses is loaded as usual.
"""

from __future__ import annotations

import sys
import tempfile

from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

# s3a and its magic committer are used by every job on the stack; loading them needs no server.
HADOOP_CLASSES = [
    "org.apache.hadoop.fs.s3a.S3AFileSystem",
    "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory",
    "org.apache.hadoop.fs.s3a.commit.magic.MagicS3GuardCommitter",
    "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol",
    "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter",
]


def main() -> None:
    spark = SparkSession.builder.master("local[2]").appName("lensflow-class-archive").getOrCreate()
    jvm = spark.sparkContext._jvm
    loader = jvm.Thread.currentThread().getContextClassLoader()
    for name in HADOOP_CLASSES:
        try:
            jvm.Class.forName(name, True, loader)
        except Exception as e:  # noqa: BLE001 - a class missing here is only a slower start later
            sys.stderr.write(f"class archive: {name} not loaded ({e})\n")
    ratings = spark.createDataFrame(
        [
            (u, m, float(1 + (u * 7 + m * 3) % 5), 1_000_000 + u * m)
            for u in range(60)
            for m in range(40)
            if (u + m) % 3
        ],
        "userId int, movieId int, rating double, timestamp long",
    )
    with tempfile.TemporaryDirectory() as tmp:
        ratings.write.csv(f"{tmp}/csv", header=True)
        ratings = spark.read.csv(f"{tmp}/csv", header=True, inferSchema=True).dropna()
        ratings.write.parquet(f"{tmp}/parquet")
        ratings = spark.read.parquet(f"{tmp}/parquet").cache()
        train, test = ratings.randomSplit([0.8, 0.2], seed=1)
        model = ALS(
            rank=4, maxIter=2, seed=1, userCol="userId", itemCol="movieId", coldStartStrategy="drop"
        ).fit(train)
        RegressionEvaluator(labelCol="rating").evaluate(model.transform(test))
        model.recommendForAllUsers(5).collect()
        model.write().save(f"{tmp}/model")
        ranked = Window.partitionBy("userId").orderBy(F.desc("rating"))
        ratings.withColumn("rank", F.row_number().over(ranked)).groupBy("movieId").agg(
            F.avg("rating"), F.count("*"), F.stddev("rating"), F.percentile_approx("rating", 0.5)
        ).join(ratings.select("movieId").distinct(), "movieId").orderBy("movieId").collect()
        ratings.createOrReplaceTempView("ratings")
        spark.sql(
            "SELECT movieId, sum(CAST(rating AS DECIMAL(38, 18))) FROM ratings GROUP BY movieId"
        ).collect()
        ratings.groupBy("userId").applyInPandas(lambda pdf: pdf.head(3), ratings.schema).write.json(
            f"{tmp}/json"
        )
    spark.stop()


if __name__ == "__main__":
    main()
