#!/bin/sh
# Start one role of GIU EV: web | http | worker | beat | migrate | manage <command...>.
# Anything else is run as given (e.g. `sh` for a shell in the container).
# In production the proxy sends /ocpp/ and /ws/ to `web` and all other HTTP to
# `http` (docs/deploy.md).
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
  web)
    # Daphne (ASGI): the chargers' OCPP WebSockets (/ocpp/) and the live pages'
    # (/ws/). It also answers HTTP, for the embedded single-process case (one
    # container, or `make run`); behind the proxy HTTP goes to `http`, since
    # Daphne runs a process's sync views one at a time (docs/api.md).
    # --proxy-headers: client address and scheme from the TLS proxy in front.
    # Charger sockets: 30 s for a handshake (reconnect storms queue up), no
    # cut after Daphne's default of one day, and messages up to
    # OCPP_MAX_MESSAGE_BYTES (8 MiB; Daphne's own 1 MiB drops a charger whose
    # StopTransaction carries a long transactionData). docs/ocpp.md.
    max_message="${OCPP_MAX_MESSAGE_BYTES:-8388608}"
    exec daphne --bind 0.0.0.0 --port "${PORT:-8000}" --proxy-headers \
      --websocket_connect_timeout 30 --websocket_timeout -1 \
      --websocket-max-message-size "$max_message" \
      --websocket-max-frame-size "$max_message" \
      giu_ev.asgi:application "$@"
    ;;
  http)
    # gunicorn (WSGI): pages, admin, API, /metrics, /healthz, /readyz. Sync
    # workers, HTTP_WORKERS of them (2 x CPUs), behind a buffering proxy; all
    # settings and the multiprocess metrics folder in deploy/gunicorn.conf.py.
    exec gunicorn --config deploy/gunicorn.conf.py giu_ev.wsgi:application "$@"
    ;;
  worker)
    # Pool processes write their counters here; the worker's main process sums
    # them on WORKER_METRICS_PORT (giu_ev/celery_metrics.py). Files of an
    # earlier run would be counted again, so the folder starts empty.
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec celery --app giu_ev worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" "$@"
    ;;
  beat)
    # The schedule lives in the database (django-celery-beat): no state file.
    exec celery --app giu_ev beat --loglevel "${LOG_LEVEL:-INFO}" --pidfile= "$@"
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
