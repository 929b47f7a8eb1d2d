# pacache build entry points. Every target does its own set-up from a fresh clone:
# `make test` on a machine with only python3 (>= 3.11) and apt-get is enough.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The install stamp is keyed on pyproject.toml's content, so editing dependencies
# reinstalls and an unchanged file makes `make install` a no-op.
PYPROJECT_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
STAMP  := $(VENV)/.installed-$(PYPROJECT_HASH)
KERNEL_SOURCES := setup.py $(wildcard engine/_kernels/*.pyx engine/_kernels/*.pxd engine/_kernels/*.h server/*.pyx server/*.h)
KERNELS_STAMP  := $(VENV)/.kernels-built

PY_PACKAGES := engine loaders server bench
PROTO_DIR   := proto
PROTO_OUT   := server/_proto
TOOLS       := .tools
BUF         := $(TOOLS)/node_modules/.bin/buf
BUF_VERSION ?= 1
# `buf breaking` compares proto/ with this tag once it exists (cut when the v1 API lands)
BREAKING_TAG := v1.0.0
NODE_EXAMPLE := examples/node

.PHONY: help venv install kernels redis buf proto node-example test test-crash test-fuzz \
        test-checked check check-format check-lint check-types check-imports check-proto \
        check-cython run bench-engine bench bench-full clean distclean

# help: list the targets, because `make` with no target should not do anything surprising.
help:
	@echo "make install       create .venv and install pacache + dev/bench groups (cached by stamp)"
	@echo "make redis         install redis-server via apt-get if it is missing"
	@echo "make proto         generate Python gRPC code from proto/ into $(PROTO_OUT)/ (buf generate)"
	@echo "make test          unit/integration/e2e tests, excluding the slow marker"
	@echo "make test-crash    the SIGKILL/restart test with 200 kill points (make test runs 30)"
	@echo "make test-fuzz     the fuzz suite with 100,000 inputs on a random seed (make test runs 2,000)"
	@echo "make test-checked  engine unit tests against kernels built with bounds checks + sanitizers"
	@echo "make check         ruff format/lint, mypy, import-linter contracts, cython-lint, buf lint/breaking"
	@echo "make run           serve the demo data set"
	@echo "make bench-engine  engine micro-benchmarks -> bench/results/engine-latest.json"
	@echo "make bench         end-to-end benchmark, small scale"
	@echo "make bench-full    end-to-end benchmark, large scale"
	@echo "make clean         remove caches and generated code; distclean also .venv and .tools"

# venv/install: one virtualenv with the package (editable) and the dev + bench dependency
# groups. `--group` needs pip >= 25.1, so pip is upgraded first. Old stamps are removed so
# a changed pyproject.toml always triggers a reinstall. The editable install compiles the
# Cython kernels in place; `kernels` recompiles them when their sources change (pip would
# not notice an edited .pyx).
venv install: $(STAMP) $(KERNELS_STAMP)

$(STAMP): pyproject.toml
	@if ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -e . --group dev --group bench
	rm -f $(VENV)/.installed-*
	touch $@

kernels: $(KERNELS_STAMP)

$(KERNELS_STAMP): $(STAMP) $(KERNEL_SOURCES)
	$(BIN)/python setup.py -q build_ext --inplace
	touch $@

# redis: integration and e2e tests start their own redis-server on a free port, so the
# binary must exist. Install it only when missing; use sudo only when not root.
redis:
	@if command -v redis-server >/dev/null 2>&1; then \
	  echo "redis-server: $$(command -v redis-server)"; \
	else \
	  sudo=""; \
	  if [ "$$(id -u)" -ne 0 ]; then \
	    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	    else echo "redis-server is missing and we are neither root nor have sudo" >&2; exit 1; fi; \
	  fi; \
	  $$sudo apt-get update; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	fi

# buf: the buf CLI from npm into .tools/ (major version $(BUF_VERSION)), for proto and
# check-proto. A missing npm or a failed install is not an error here: proto then runs
# grpc_tools.protoc directly, and check-proto skips (no npm) or fails (install failed).
buf:
	@if [ -x $(BUF) ]; then exit 0; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "buf: npm is not installed, cannot fetch @bufbuild/buf"; exit 0; \
	fi; \
	echo "buf: installing @bufbuild/buf@$(BUF_VERSION) into $(TOOLS)/"; \
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error @bufbuild/buf@$(BUF_VERSION) \
	  || echo "buf: npm install @bufbuild/buf@$(BUF_VERSION) failed" >&2

# proto: the .proto files are the API contract; the Python stubs are generated from them
# into one place (server/_proto/) that only server/ imports. No-op until protos exist.
# `buf generate` (buf.gen.yaml) runs grpcio-tools' generators as local plugins; without
# buf (no npm, or its install failed) the same grpc_tools.protoc call is made directly:
# the same bytes out, so `make test` still needs only python3 and apt-get.
# The sed stays: grpc_python writes `from pacache.v1 import pacache_pb2` (an import from
# the proto path's root) and has no option for a relative import (its only options are
# grpc_1_0/grpc_2_0), and buf does not rewrite plugin output; server/_proto/ is not on
# sys.path, so the import has to be `from . import`.
proto: $(STAMP) buf
	@shopt -s nullglob; files=($(PROTO_DIR)/pacache/v1/*.proto); \
	if [ $${#files[@]} -eq 0 ]; then \
	  echo "proto: no .proto files under $(PROTO_DIR)/pacache/v1 yet, nothing to generate"; \
	else \
	  mkdir -p $(PROTO_OUT); \
	  if [ -x $(BUF) ]; then \
	    echo "proto: $(BUF) generate (buf.gen.yaml): $(PROTO_OUT)/ from $${files[*]}"; \
	    $(BUF) generate; \
	  else \
	    echo "proto: no buf (see above), generating $(PROTO_OUT)/ with grpc_tools.protoc"; \
	    $(BIN)/python -m grpc_tools.protoc -I$(PROTO_DIR) \
	      --python_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
	      "$${files[@]}"; \
	  fi; \
	  sed -i 's/^from pacache\.v1 import /from . import /' $(PROTO_OUT)/pacache/v1/*_grpc.py; \
	  for d in $(PROTO_OUT) $(PROTO_OUT)/pacache $(PROTO_OUT)/pacache/v1; do \
	    [ -f $$d/__init__.py ] || echo '"""Generated by make proto from proto/; do not edit."""' > $$d/__init__.py; \
	  done; \
	fi

# node-example: the Node client's packages (examples/node, exactly as its lock file says)
# for tests/e2e/test_node_client.py. npm ci runs only when the lock file changed since the
# last one (its sha256 is kept in node_modules/.lock-sha256, which the test checks too).
# Without npm the Node e2e test is skipped, and this says so.
node-example:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "node-example: npm is not installed, the Node e2e test (tests/e2e/test_node_client.py) will be skipped"; \
	  exit 0; \
	fi; \
	lock="$$(sha256sum $(NODE_EXAMPLE)/package-lock.json | cut -d' ' -f1)"; \
	if [ "$$(cat $(NODE_EXAMPLE)/node_modules/.lock-sha256 2>/dev/null)" = "$$lock" ]; then \
	  echo "node-example: $(NODE_EXAMPLE)/node_modules matches package-lock.json"; \
	else \
	  echo "npm ci --prefix $(NODE_EXAMPLE)"; \
	  npm ci --prefix $(NODE_EXAMPLE) --no-audit --no-fund --loglevel=error; \
	  echo "$$lock" > $(NODE_EXAMPLE)/node_modules/.lock-sha256; \
	fi

# test: the default suite (what CI runs), then the kernels' own tests again against the
# checked build (bounds checks, ASan, UBSan; about a minute, see test-checked). pytest's
# exit code 5 ("no tests collected") is deliberately left as a failure: a green run must
# have run tests.
test: install redis proto node-example
	$(BIN)/python -m pytest -m "not slow" tests
	$(MAKE) test-checked CHECKED_TESTS="$(CHECKED_KERNEL_TESTS)"

# test-crash: the crash/restart test with 200 SIGKILL points instead of the default 30.
test-crash: install redis proto
	PACACHE_CRASH_POINTS=200 $(BIN)/python -m pytest -o timeout=3600 tests/integration/test_crash_restart.py

# test-fuzz: the fuzz suite (tests/fuzz: every gRPC method, every loader decoder) with
# 100,000 inputs instead of make test's 2,000, drawn from a random seed that is printed
# first (PACACHE_FUZZ_SEED=<seed> make test-fuzz draws the same inputs again;
# PACACHE_FUZZ_EXAMPLES=<n> sizes it). No Redis: the fuzzed servers read no streams. The
# outcome table lands in bench/results/fuzz-latest.json.
test-fuzz: install proto
	@examples="$${PACACHE_FUZZ_EXAMPLES:-100000}"; \
	seed="$${PACACHE_FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"; \
	echo "fuzz: $$examples inputs, seed $$seed (PACACHE_FUZZ_SEED=$$seed repeats them)"; \
	PACACHE_FUZZ_EXAMPLES=$$examples PACACHE_FUZZ_SEED=$$seed \
	  $(BIN)/python -m pytest -o timeout=3600 -p no:cacheprovider tests/fuzz

# test-checked: the engine's unit and reference-agreement tests against kernels compiled
# with bounds checks, wraparound and initialised-view checks on, plus AddressSanitizer and
# UBSan (libasan is preloaded: CPython itself is not built with it; leak detection is off
# because CPython keeps its arenas to exit). The build is a copy of the sources under
# build/checked, so the normal in-place kernels are untouched; the first test asserts
# that the checked build is the one imported.
CHECKED_DIR := build/checked
CHECKED_TESTS ?= tests/unit
# the tests that drive the kernels hardest: what `make test` runs against the checked build
CHECKED_KERNEL_TESTS := tests/unit/test_money.py tests/unit/test_pricing_resolution.py \
  tests/unit/test_pricing_kernel_edges.py tests/unit/test_reference_agreement.py \
  tests/unit/test_atp.py tests/unit/test_catalog_rules.py tests/unit/test_wire.py
test-checked: install
	rm -rf $(CHECKED_DIR) && mkdir -p $(CHECKED_DIR)
	cp -r engine loaders server bench tests pyproject.toml setup.py $(CHECKED_DIR)/
	rm -f $(CHECKED_DIR)/engine/_kernels/*.so $(CHECKED_DIR)/engine/_kernels/*.c \
	  $(CHECKED_DIR)/server/*.so $(CHECKED_DIR)/server/*.c
	cd $(CHECKED_DIR) && PACACHE_KERNEL_CHECKS=1 PACACHE_KERNEL_SANITIZE=1 \
	  ../../$(BIN)/python setup.py -q build_ext --inplace
	cd $(CHECKED_DIR) && \
	  export LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    PACACHE_WIRE_EXAMPLES=100; \
	  ../../$(BIN)/python -c 'import engine._kernels as k; assert k.CHECKED, k.__file__; print("checked kernels:", k.__file__)' && \
	  ../../$(BIN)/python -m pytest -p no:cacheprovider -m "not slow" -q $(CHECKED_TESTS)

# check: static checks. Each is its own target so `make -k check` reports all failures.
check: check-format check-lint check-types check-imports check-cython check-proto

# check-format: formatting is ruff's, never hand-argued.
check-format: install
	$(BIN)/ruff format --check .

# check-lint: ruff lint rules from pyproject.toml.
check-lint: install
	$(BIN)/ruff check .

# check-types: mypy (strict for engine.* via pyproject overrides). Packages with no Python
# files yet are skipped, since mypy refuses an empty directory.
check-types: install
	@dirs=""; for d in $(PY_PACKAGES); do \
	  if [ -n "$$(find $$d -name '*.py' -not -path '$(PROTO_OUT)/*' -print -quit 2>/dev/null)" ]; then dirs="$$dirs $$d"; fi; \
	done; \
	if [ -z "$$dirs" ]; then echo "mypy: no Python files yet, skipped"; exit 0; fi; \
	echo "$(BIN)/mypy$$dirs"; $(BIN)/mypy $$dirs

# check-imports: import-linter contracts (engine is pure; loaders never import server).
check-imports: install
	$(BIN)/lint-imports

# check-cython: cython-lint on the kernels (line length and rules from pyproject.toml). It
# runs pycodestyle by name, so the venv's bin goes first on PATH.
check-cython: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cython-lint $(wildcard engine/_kernels/*.pyx engine/_kernels/*.pxd server/*.pyx)

# check-proto: buf lint (STANDARD rules, buf.yaml) on proto/, then buf breaking (FILE rules)
# against the git tag $(BREAKING_TAG); until that tag exists there is nothing to break and
# the check says so. buf comes from npm into .tools/ (the buf target); without npm, or
# without any .proto file yet, this is skipped with a message.
check-proto: buf
	@if [ -z "$$(find $(PROTO_DIR) -name '*.proto' -print -quit 2>/dev/null)" ]; then \
	  echo "buf lint: no .proto files yet, skipped"; exit 0; \
	fi; \
	if [ ! -x $(BUF) ]; then \
	  if ! command -v npm >/dev/null 2>&1; then \
	    echo "buf lint, buf breaking: SKIPPED, npm is not installed (needed to fetch @bufbuild/buf)"; exit 0; \
	  fi; \
	  echo "buf lint, buf breaking: $(BUF) is missing (its npm install failed)" >&2; exit 1; \
	fi; \
	echo "$(BUF) lint"; $(BUF) lint; \
	if git rev-parse -q --verify "refs/tags/$(BREAKING_TAG)^{commit}" >/dev/null 2>&1; then \
	  echo "$(BUF) breaking --against '.git#tag=$(BREAKING_TAG)'"; \
	  $(BUF) breaking --against '.git#tag=$(BREAKING_TAG)'; \
	else \
	  echo "buf breaking: no git tag $(BREAKING_TAG) yet; breaking checks start once $(BREAKING_TAG) is tagged"; \
	fi

# run: serve the built-in demo data set locally (the quickest way to poke the API). Changes
# (Ingest, Reserve, Release) are kept in a write-ahead log and checkpoints under .data/run,
# so they survive a restart; delete that directory to start from the demo data again.
run: install proto
	$(BIN)/pacache serve --demo --snapshot-dir .data/run

# bench-engine: engine micro-benchmarks under pytest-benchmark, outside the default test
# run; the JSON lands in bench/results/ for comparison across commits.
bench-engine: install
	mkdir -p bench/results
	$(BIN)/python -m pytest bench/micro -m bench --benchmark-enable \
	  --benchmark-json=bench/results/engine-latest.json -p no:cacheprovider

# bench: end-to-end benchmark on the small reference scale (DESIGN.md section 10): every
# system, the CPU ratio, freshness with 10k deltas/s, a profile where a target is missed;
# report in bench/results/<date>-small.md, README's bench section rewritten from it.
# `pacache` is the server as deployed (one worker per core); `pacache-w1` the same with one
# worker, so the report shows CPU per call at both worker counts.
# Data comes from $(BENCH_DATA) (generated and built there when missing).
BENCH_DATA ?= $(if $(PACACHE_BENCH_DATA),$(PACACHE_BENCH_DATA),.data/bench)
BENCH_SYSTEMS ?= pacache,pacache-w1,ping,redis,postgres,python
BENCH_FLAGS ?=
bench: install redis proto
	$(BIN)/pacache bench --scale small --data $(BENCH_DATA) --systems $(BENCH_SYSTEMS) \
	  --deltas-rate 10000 \
	  --json bench/results/bench-latest-small.json --update-readme $(BENCH_FLAGS)

# bench-full: the same on the large reference scale; long (the large data takes ~2.5 min
# and ~10 GB to generate and build once), longer runs, and 15 s of unmeasured load on each
# fresh server first: the first calls on a memory-mapped 4.5 GB snapshot page it in.
# pacache and Ping only by default: a served large state is two 4.9 GB instances in shared
# memory, so a second pacache server beside the reference one does not fit in 24 GB, and
# the baselines' loaders hold the whole extract as Python objects (python -m bench.workers
# measures workers 1 vs 2 at this scale, one server at a time).
BENCH_FULL_SYSTEMS ?= pacache,ping
bench-full: install redis proto
	$(BIN)/pacache bench --scale large --data $(BENCH_DATA) --systems $(BENCH_FULL_SYSTEMS) \
	  --deltas-rate 10000 --seconds 5 \
	  --prime-seconds 15 \
	  --json bench/results/bench-latest-large.json --update-readme $(BENCH_FLAGS)

# clean: caches and build artefacts. Generated protobuf code is committed (so a plain
# pip install works) and regenerated by `make proto`.
clean:
	find . -path ./$(VENV) -prune -o -path ./$(TOOLS) -prune -o \
	  -type d \( -name __pycache__ -o -name '*.egg-info' \) -print0 | xargs -0 rm -rf
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks .import_linter_cache build dist

# distclean: clean plus the virtualenv and the npm tool cache, back to a fresh clone.
distclean: clean
	rm -rf $(VENV) $(TOOLS)
