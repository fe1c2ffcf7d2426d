# The benchmark image: pinned CUDA toolkit, Python 3.11, torch, DeepSpeed (CPU-Adam op compiled at build
# time, so no run pays the JIT build), bitsandbytes, and the project, all from requirements.lock.
#   docker build -t harness .
#   docker run --gpus all --ipc=host -v "$PWD/reports:/app/reports" harness
FROM nvidia/cuda:13.0.1-cudnn-devel-ubuntu22.04

ARG TORCH_VERSION=2.13.0
ARG IMAGE_TAG=harness
# Hopper, Ada, Ampere (and Blackwell): what the prebuilt op and any JIT build target without a GPU at build time.
ARG TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0;10.0;12.0"

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HARNESS_CACHE_DIR=/app/cache \
    TORCH_EXTENSIONS_DIR=/opt/torch_extensions

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11=3.11.* python3.11-venv=3.11.* python3.11-dev=3.11.* build-essential=12.9* \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN python3.11 -m venv /opt/venv

# Dependencies first (cached across code changes): everything but torch from the hashed lock, then the
# CUDA build of the pinned torch release.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
    && pip install --no-cache-dir "torch==${TORCH_VERSION}"

# DeepSpeed again, now that torch is present, with its CPU-Adam op compiled in; checked importable.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN grep -A1 '^deepspeed==' requirements.lock > /tmp/deepspeed.txt \
    && DS_BUILD_CPU_ADAM=1 DS_ACCELERATOR=cuda TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST}" \
       pip install --no-cache-dir --no-deps --no-build-isolation --force-reinstall --require-hashes \
       -r /tmp/deepspeed.txt \
    && DS_ACCELERATOR=cuda python -c "import deepspeed.ops.adam.cpu_adam_op" \
    && rm /tmp/deepspeed.txt

COPY pyproject.toml README.md ./
COPY harness ./harness
COPY strategies ./strategies
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

RUN useradd --create-home --uid 1000 harness \
    && mkdir -p /app/reports /app/cache "${TORCH_EXTENSIONS_DIR}" \
    && chown -R harness:harness /app "${TORCH_EXTENSIONS_DIR}"
USER 1000:1000
VOLUME ["/app/reports"]

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
