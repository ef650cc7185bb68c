# Two commands for a fresh machine with Python 3.11 and make: `make run` and `make test`.
# `make run` installs the production pins only (requirements.lock); `make test` adds the test and lint tools
# (requirements-dev.lock).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint format migrate bench clean fonts

# Survey charts draw Chinese labels with this font (charts.py looks for it): installed from Debian when missing.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.lock | $(BIN)/python $(CJK_FONT)
	$(BIN)/pip install --quiet -r requirements.lock
	touch $(STAMP)

$(DEV_STAMP): requirements-dev.lock requirements.lock | $(BIN)/python $(CJK_FONT)
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $(STAMP) $(DEV_STAMP)

$(CJK_FONT):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends fonts-wqy-microhei

fonts: $(CJK_FONT)

run: $(STAMP)
	$(BIN)/python bot.py run

migrate: $(STAMP)
	$(BIN)/python bot.py migrate

# Without PostgreSQL on 127.0.0.1:5432 the SQLite tests still run and the summary says loudly what was skipped;
# GONGSHE_REQUIRE_PG=1 (set by .ci/run) makes a missing PostgreSQL a failure.
test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PTB_TIMEDELTA=1 $(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/updates.py
	$(BIN)/python bench/claim_storm.py

clean:
	rm -rf $(VENV)
