# One command runs the main job (`make bench`), one runs the tests (`make test`). Both set up .venv on first use.
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
STRATEGY   ?= amp
STRATEGIES ?=
PRESET     ?= gpt2-124m
BUDGET     ?= 24h
DATA       ?= synthetic
REPEATS    ?= 1
STEPS      ?= 20
RESUME     ?=
ARGS       ?=
TEST_WORKERS ?= 2
IMAGE      ?= harness
TORCH_VERSION := 2.13.0
RUN_FLAGS   = --preset $(PRESET) --budget $(BUDGET) --data $(DATA) $(ARGS)
# Empty STRATEGIES: the harness's default set (the mission's four, from the strategy registry).
STRATEGY_FLAG = $(if $(STRATEGIES),--strategies $(STRATEGIES))

GPU        ?=
.PHONY: setup bench sweep parity fit answer report env screenshots test test-gpu lint lock docker-build docker-run clean

# Everything but torch comes from the hashed lock. torch is pinned by version: the CPU build on CPU-only
# machines and the CUDA build in the image are different files of the same release.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

# The doctor loads every strategy's library, which JIT-builds DeepSpeed's ops once for this environment
# (a minute; 3 on two busy cores). A run builds what it needs at its first use, with a line saying so; the
# suite builds them first, so that no timed test waits on a build.
$(VENV)/.ops: $(VENV)/.installed
	$(PY) -m harness env > $(VENV)/doctor.txt
	touch $@

bench: setup
	$(PY) -m harness bench --strategy $(STRATEGY) $(RUN_FLAGS) $(if $(RESUME),--resume)

sweep: setup
	$(PY) -m harness sweep $(STRATEGY_FLAG) --repeats $(REPEATS) $(RUN_FLAGS)

parity: setup
	$(PY) -m harness parity $(STRATEGY_FLAG) --steps $(STEPS) $(RUN_FLAGS)

# The loss law of this recipe on DATA, fitted on a grid of short runs (FIT_BUDGET of BUDGET, default 5%);
# every later answer for this recipe and data uses it.
fit: setup
	$(PY) -m harness fit --budget $(BUDGET) --data $(DATA) $(if $(FIT_BUDGET),--fit-budget $(FIT_BUDGET)) $(ARGS)

# The title question for this GPU (or GPU="a name of the GPU table", predicted) and the budget: the best and
# the biggest (strategy, size). ARGS="--predict-only", "--gpu-memory-gib 24,80" or "--train" as needed.
answer: setup
	$(PY) -m harness answer --budget $(BUDGET) --data $(DATA) $(if $(STRATEGIES),--strategies $(STRATEGIES)) $(if $(GPU),--gpu "$(GPU)") $(ARGS)

report: setup
	$(PY) -m harness report

env: setup
	$(PY) -m harness env

# The README's screenshots (index, run page, answer page at 1280 px) from a new tiny CPU sweep: about 2 min.
screenshots: setup
	$(PY) docs/screenshots.py

# The suite on TEST_WORKERS pytest-xdist workers (one thread each; tests that read one expensive set-up stay
# on one worker), then the `serial` tests alone: those that time, signal or run several runs at once.
test: setup $(VENV)/.ops
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not serial"
	$(PY) -m pytest -q -m serial

test-gpu: setup $(VENV)/.ops
	$(PY) -m pytest -q -m gpu

lint: setup
	$(PY) -m ruff check harness strategies tests benchmarks docs
	$(PY) -m ruff format --check harness strategies tests benchmarks docs
	$(VENV)/bin/hadolint Dockerfile

docker-build:
	docker build --build-arg IMAGE_TAG=$(IMAGE) -t $(IMAGE) .

docker-run:
	docker run --gpus all --ipc=host -v "$(CURDIR)/reports:/app/reports" -v harness-cache:/app/cache $(IMAGE)

# Regenerate the locks from pyproject.toml (needs pip-tools): requirements.lock for .venv (everything but
# torch, dev tools included), then requirements-image.lock for the image (the same versions, plus torch's
# CUDA build with triton and the nvidia libraries, and the gpu extra's Triton kernels; no dev tools).
lock: setup
	pip-compile --quiet --generate-hashes --extra dev --strip-extras --unsafe-package torch \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(VENV)/bin/uv pip compile pyproject.toml --extra gpu -c requirements.lock --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header \
		-o requirements-image.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
