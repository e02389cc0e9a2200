# The two commands of the README. Both create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test lint bench install

$(BIN)/hotline: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/hotline

up: install
	$(BIN)/hotline up

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/webhooks.py
