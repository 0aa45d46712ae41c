# Two commands on a fresh clone: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_DIR := tests/interop
NODE_STAMP := $(NODE_DIR)/node_modules/.installed

.PHONY: install run test bench lint clean

install: $(PY_STAMP)

$(PY_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/aibrain serve

test: install $(NODE_STAMP)
	$(BIN)/pytest

bench: install $(NODE_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules
