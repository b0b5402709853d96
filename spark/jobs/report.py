"""spark-submit entry point of the `report` job (the package ships alongside as --py-files)."""

from lensflow_spark.jobs.runtime import main

if __name__ == "__main__":
    main("report")
