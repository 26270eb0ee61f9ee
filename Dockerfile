# syntax=docker/dockerfile:1
# GIU EV: one image, its roles chosen by the command (docker/entrypoint.sh):
#   http    gunicorn (pages, admin, API; deploy/gunicorn.conf.py) on $PORT (8000)
#   web     Daphne (OCPP and live-page WebSockets; HTTP too when run alone) on $PORT
#   worker  Celery worker, its metrics on $WORKER_METRICS_PORT (9808)
#   beat    Celery beat (run exactly one)
#   migrate python manage.py migrate, run once before web and http start
# Build: docker build -t giu-ev .

ARG PYTHON_VERSION=3.11

# --- Front-end packages: npm ci of the runtime dependencies only -------------------
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- Python wheels, built where compilers are ----------------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements/ requirements/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements/prod.txt

# --- Runtime: slim, no compilers, non-root ----------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GIU_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000 \
    WORKER_METRICS_PORT=9808
RUN groupadd --system --gid 10001 giu \
    && useradd --system --uid 10001 --gid giu --home-dir /app --shell /usr/sbin/nologin giu
WORKDIR /app

COPY requirements/ requirements/
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r requirements/prod.txt

# Only the files the portal serves from npm (settings.STATICFILES_DIRS).
COPY --from=assets /build/node_modules/chart.js/dist node_modules/chart.js/dist
COPY --from=assets /build/node_modules/htmx.org/dist node_modules/htmx.org/dist
COPY . .

# Static files are collected into the image; WhiteNoise serves them. The
# throw-away key and database exist for this one command only: no secret and
# no database file stay in the image.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
        python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /app/var \
    && chown giu:giu /app/var \
    && chmod 0755 docker/entrypoint.sh

USER 10001:10001
EXPOSE 8000 9808
# Liveness of the web and http roles; compose and the k8s manifests set the
# worker's and beat's own checks.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
