# The two commands of the README: `make run` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/acn-data-caltech-jpl
PORT ?= 8000
# `make run REPLAY=1` also replays the imported sessions of a site as live OCPP
# chargers (one client per charger), at REPLAY_SPEED simulated seconds per second.
REPLAY ?=
REPLAY_SITE ?= caltech
REPLAY_SPEED ?= 600
HOST ?= 127.0.0.1
# Largest WebSocket message a charger may send, in bytes (docs/ocpp.md). Daphne's
# own 1 MiB drops a charger whose StopTransaction carries a day of one-minute
# energy, power and current samples (1.5 MB); 8 MiB holds a weekend's (4.2 MiB).
OCPP_MAX_MESSAGE_BYTES ?= 8388608
# Tests run on the database production uses; point elsewhere with DATABASE_URL=...
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test install lint

$(BIN)/.installed: requirements/base.txt requirements/dev.txt requirements/prod.txt package-lock.json
	npm ci --silent --no-audit --no-fund
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt -r requirements/prod.txt
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py import_sessions "$(DATA)"
	$(BIN)/python manage.py train_forecasts --only-missing
	$(BIN)/python manage.py predict_forecasts
	$(BIN)/python manage.py ensure_admin
	@if [ -n "$(REPLAY)" ]; then \
	  ( until $(BIN)/python -c "import urllib.request as u; u.urlopen('http://$(HOST):$(PORT)/healthz', timeout=2)" 2>/dev/null; do sleep 1; done; \
	    $(BIN)/python manage.py replay_sessions --site $(REPLAY_SITE) --speed $(REPLAY_SPEED) --url ws://$(HOST):$(PORT)/ocpp/ ) & \
	fi; \
	$(BIN)/daphne --websocket_connect_timeout 30 --websocket_timeout -1 \
	  --websocket-max-message-size $(OCPP_MAX_MESSAGE_BYTES) \
	  --websocket-max-frame-size $(OCPP_MAX_MESSAGE_BYTES) \
	  -b $(HOST) -p $(PORT) giu_ev.asgi:application

test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
