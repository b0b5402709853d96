"""spark-submit entry point of the `model_point` job (the package ships alongside as --py-files)."""

from lensflow_spark.jobs.runtime import main

if __name__ == "__main__":
    main("model_point")
