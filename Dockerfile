# syntax=docker/dockerfile:1.7
#
# ecom-stream worker image.
#
#   docker build -t ecom-stream:local .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -p 6066:6066 ecom-stream:local
#
# Stage 1 builds wheels for the project and every dependency; stage 2 installs them
# offline (--no-index) into a clean slim image, so no compiler, source tree or pip
# cache ends up in the runtime layers. For reproducible production builds, pin the
# base image by digest (python:3.11-slim@sha256:...) and let Renovate/Dependabot bump it.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Only what the wheel needs (see .dockerignore: everything else is excluded).
COPY pyproject.toml README.md ./
COPY streams/ streams/
COPY online_models/ online_models/
COPY backtest/ backtest/
COPY ecom_cli/ ecom_cli/

RUN pip wheel --wheel-dir /wheels .


FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

LABEL org.opencontainers.image.title="ecom-stream" \
      org.opencontainers.image.description="Kafka/Faust real-time marketing event-stream worker" \
      org.opencontainers.image.licenses="Apache-2.0"

# ECOM_WEB_HOST: the worker binds 127.0.0.1 by default, which is unreachable from
# outside a container; probes and Prometheus need 0.0.0.0.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ECOM_WEB_HOST=0.0.0.0 \
    ECOM_WEB_PORT=6066 \
    ECOM_DATA_DIR=/var/lib/ecom-stream

RUN groupadd --system --gid "${APP_GID}" ecom \
    && useradd --system --uid "${APP_UID}" --gid ecom --no-create-home \
       --home-dir /var/lib/ecom-stream --shell /usr/sbin/nologin ecom \
    && install -d -o ecom -g ecom -m 0750 /var/lib/ecom-stream

# The wheels are bind-mounted from the build stage, so they never land in a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/ecom_stream-*.whl

WORKDIR /var/lib/ecom-stream
USER ${APP_UID}:${APP_GID}

EXPOSE 6066

# Liveness only (/healthz: 503 while the processing agent crash-loops). Readiness (/readyz) is
# a rollout/traffic concern and is probed by the orchestrator, not by Docker.
# The slim image has no curl, so the probe uses the standard library.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ECOM_WEB_PORT', '6066'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3).status == 200 else 1)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["ecom-stream"]
CMD ["worker"]
