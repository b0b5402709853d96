# The TypeScript worker (the workflows and the staging, registry and EMR activities) and the
# `lensflow` CLI. Node is the version package.json pins (devDependency `node`), the packages exactly
# what package-lock.json locks: the same pins `make setup` installs. Build from the repository root:
#   docker build -t lensflow-worker .
FROM python:3.11.7-slim-bookworm AS jobs
# The job package the worker publishes to S3 for spark-submit --py-files, zipped reproducibly.
WORKDIR /src
COPY spark/build_zip.py spark/build_zip.py
COPY spark/lensflow_spark spark/lensflow_spark
RUN python spark/build_zip.py spark/lensflow_spark dist/spark/lensflow_spark.zip

FROM node:22.23.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npx tsc -p tsconfig.build.json

FROM node:22.23.3-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production AWS_EC2_METADATA_DISABLED=true LENSFLOW_STATE_DIR=/var/lib/lensflow
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force \
    && mkdir -p /var/lib/lensflow && chown 1000:1000 /var/lib/lensflow
COPY --from=build /app/dist dist
COPY --from=jobs /src/dist/spark dist/spark
COPY spark/jobs spark/jobs
USER 1000:1000
# `docker compose run --rm worker node dist/cli/main.js run …` for the CLI.
CMD ["node", "dist/workers/main.js"]
