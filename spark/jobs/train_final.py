"""spark-submit entry point of the `train_final` job (the package ships alongside as --py-files)."""

from lensflow_spark.jobs.train_final import main

if __name__ == "__main__":
    main()
