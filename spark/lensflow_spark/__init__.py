"""lensflow's PySpark jobs. Library modules are pure DataFrame functions; only `jobs/` touches storage."""
