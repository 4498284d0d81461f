# One image for every clinic service and the gateway; the container's
# command picks which one runs (`clinic run intake`, ... see docker-compose.yml).
#
# Build stage: resolve the runtime dependencies of pyproject.toml at the exact
# versions pinned in requirements.txt (test-only packages stay out of the
# image) into a virtualenv that the final stage copies whole.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /venv
COPY requirements.txt pyproject.toml ./
# Only pyproject's dependency list is needed to resolve; an empty package
# stands in for the code so this layer is rebuilt only when a pin changes.
RUN mkdir -p common && touch common/__init__.py \
 && /venv/bin/pip install --constraint requirements.txt setuptools . \
 && /venv/bin/pip uninstall --yes ketamine-clinic

FROM python:3.11-slim

ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONWARNINGS=ignore \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLINIC_BIND=0.0.0.0

RUN groupadd --system --gid 10001 clinic \
 && useradd --system --uid 10001 --gid clinic --home-dir /app --no-create-home --shell /usr/sbin/nologin clinic

COPY --from=build /venv /venv
WORKDIR /app
COPY pyproject.toml config.yaml ./
COPY common ./common
COPY cli ./cli
COPY services ./services
COPY gateway ./gateway
# Editable, as bin/setup installs it locally: migrations and config.yaml are
# read from /app, next to the code, in both places.
RUN pip install --no-deps --no-build-isolation --editable . \
 && mkdir -p /app/var && chown clinic:clinic /app/var

USER clinic:clinic

# Services listen on WEB_SERVER_ADDRESS (API, /health, /ready, /metrics).
EXPOSE 8000 8001 8002 8003 8004

# /ready: the service's database and the broker answer. The gateway's
# compose entry probes liveness instead (it has no database).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["clinic", "health"]

ENTRYPOINT ["clinic"]
CMD ["run", "all"]
