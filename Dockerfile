# syntax=docker/dockerfile:1
#
# One image, two commands (README, "Deploy and scale"):
#   web    (default CMD)  gunicorn -c gunicorn.conf.py webapp.wsgi:app
#   daemon                python -m cache_daemon
# Both run as uid/gid 10001 and share the memory-backed /dev/shm: the daemon publishes the
# window there (files 0640, directory 0750), the web workers map it read-only.
#
# Without further settings the image is a self-contained demo: the daemon replays the bundled
# sample series (REPLAY_PATH) and installs the model trained here at build time (MODEL_PATH).
# Production sets KAFKA_BOOTSTRAP_SERVERS and MODEL_BUCKET/MODEL_KEY and clears MODEL_PATH
# (an empty variable counts as unset).
#
# BASE_IMAGE: any Debian bookworm image with Python 3.11 as `python3` and its venv module. The
# default is the official slim image; `make image-test` builds on a base made from Debian
# packages alone (tests/deploy/_base_image.py). Only `python3` is called, never `python`, so
# /usr/bin/python3 (Debian) and /usr/local/bin/python3 (official image) both work; in the
# runtime stage `python` is the venv's.
ARG BASE_IMAGE=python:3.11-slim-bookworm
# checkov:skip=CKV_DOCKER_7: checkov does not expand ARG defaults; BASE_IMAGE defaults to a pinned tag (tests/deploy/test_dockerfile.py checks it)

# ---- build: wheels for the project and every dependency, the venv, the model artifact ----
FROM ${BASE_IMAGE} AS build

# pip compiles the venv's bytecode at install time: the runtime's root filesystem is read-only.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Every dependency ships manylinux wheels, so this stage needs no compiler today; if one ever
# needs building from source, its build tools go here and never into the runtime stage.
COPY pyproject.toml README.md ./
COPY contract/ contract/
COPY objectstore/ objectstore/
COPY shm/ shm/
COPY forecasting/ forecasting/
COPY cache_daemon/ cache_daemon/
COPY webapp/ webapp/
# pip comes from the interpreter's own ensurepip, in a throw-away venv: Debian's python3 has
# no pip of its own, and this way both bases build the same way. Behind a proxy that re-signs
# TLS, pass its CA bundle as the optional build secret `pip-ca` (never stored in a layer):
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt .
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/pip \
    && /opt/pip/bin/python -m pip wheel --wheel-dir /wheels . \
    && python3 -m venv --without-pip /opt/venv \
    && /opt/pip/bin/python -m pip --python /opt/venv/bin/python install --no-index /wheels/*.whl

COPY data/ data/
# The demo model: trained on the sample series, written with its .sha256 sidecar (required
# by the daemon before it installs an artifact). Ridge only, as make run: the sample's winner
# (docs/forecasting.md), in seconds rather than minutes.
RUN /opt/venv/bin/python -m forecasting.train --input data/electricity_demand_halfhourly.parquet --output /opt/model/model.skops --report /opt/model/report.json --models ridge

# ---- runtime: the venv, the entry-point files, tini; no compilers, no pip cache ----
FROM ${BASE_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="shm-forecast" \
      org.opencontainers.image.description="Gunicorn forecasting service and its cache daemon sidecar sharing one Arrow window in /dev/shm" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# tini is PID 1: it forwards SIGTERM to gunicorn or the daemon and reaps exec'd probes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
COPY data/ data/
COPY deploy/healthcheck.py deploy/healthcheck.py
COPY --from=build --chown=root:app /opt/model/ model/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SHM_DIR=/dev/shm/shm-forecast \
    WEB_HOST=0.0.0.0 \
    PORT=8000 \
    MODEL_PATH=/app/model/model.skops \
    REPLAY_PATH=/app/data/electricity_demand_halfhourly.parquet

USER 10001:10001
EXPOSE 8000

# Checks /healthz in the web container and the status file's heartbeat in the daemon one
# (it tells them apart by PID 1's command line). Kubernetes ignores this and uses the probes
# in deploy/k8s.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]

ENTRYPOINT ["tini", "--"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"]
