# Two commands for a fresh machine with Python 3.11 and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrate bench clean

$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python bot.py run

migrate: $(STAMP)
	$(BIN)/python bot.py migrate

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PTB_TIMEDELTA=1 $(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/updates.py

clean:
	rm -rf $(VENV)
