# The benchmark image: a pinned CUDA toolkit (nvcc and g++ for the kernels built at first use), a maintained
# Python, and every Python package (torch's CUDA build, triton and the nvidia libraries included) from the
# hashed requirements-image.lock. No development tools.
#   docker build -t harness .
#   docker run --gpus all --ipc=host -v "$PWD/reports:/app/reports" -v harness-cache:/app/cache harness
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# CUDA 13.0, as torch 2.13.0's own CUDA libraries; no -cudnn variant (torch brings its own cuDNN).
FROM nvidia/cuda:13.0.2-devel-ubuntu22.04

ARG IMAGE_TAG=harness

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HARNESS_CACHE_DIR=/app/cache \
    TORCH_EXTENSIONS_DIR=/app/cache/torch_extensions

# g++ and make for DeepSpeed's CPU-Adam op, which is built at its first use (outside the training clock)
# on the machine that runs it, into the cache volume: never with the build host's -march=native.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9* \
    && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /uvx /usr/local/bin/

# Python from uv's standalone builds: the newest 3.11 release this uv knows, never a release candidate
# (Ubuntu 22.04's python3.11 package is 3.11.0rc1).
WORKDIR /app
RUN uv python install 3.11 && uv venv --python 3.11 /opt/venv

# Dependencies first (cached across code changes), every one pinned by hash. uv builds DeepSpeed's source
# distribution the standard way (PEP 517), without torch, so no op is compiled here.
COPY requirements-image.lock ./
RUN uv pip install --require-hashes --no-deps -r requirements-image.lock

COPY pyproject.toml README.md ./
COPY harness ./harness
COPY strategies ./strategies
# The published measurements, which `harness answer` calibrates its throughput model on (run files only).
COPY docs/results ./docs/results
RUN uv pip install --no-deps --no-build-isolation . \
    && python -c "import harness, strategies, torch, deepspeed, bitsandbytes"

RUN useradd --create-home --uid 1000 harness \
    && mkdir -p /app/reports "${TORCH_EXTENSIONS_DIR}" \
    && chown -R harness:harness /app
USER 1000:1000
VOLUME ["/app/reports", "/app/cache"]

# What the default command runs; override any with -e NAME=value.
# STRATEGIES empty: the harness's default set (the mission's four, from its strategy registry).
ENV STRATEGIES="" \
    PRESET=gpt2-124m \
    BUDGET=24h \
    DATA=synthetic \
    REPEATS=1 \
    HARNESS_ARGS="" \
    HARNESS_IMAGE=${IMAGE_TAG}

# The whole matrix, one strategy after another, then the report into /app/reports/index.html.
CMD ["sh", "-c", "exec harness sweep ${STRATEGIES:+--strategies \"$STRATEGIES\"} --preset \"$PRESET\" --budget \"$BUDGET\" --data \"$DATA\" --repeats \"$REPEATS\" --runs-dir reports/runs --report reports/index.html $HARNESS_ARGS"]
