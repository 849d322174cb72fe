# vaezoo in a container: `docker run … vaezoo experiment=…` reproduces a run (see docs/reproducing.md
# and docs/scaling-out.md). Python packages come from constraints.txt, the same lock as the README and CI;
# torch's wheels bring their own CUDA libraries, the host brings the driver (docker run --gpus all).
FROM nvidia/cuda:13.0.1-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# OS packages follow the base image's Ubuntu release; every Python package is pinned by the lock.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/vaezoo
COPY pyproject.toml constraints.txt README.md ./
COPY vaezoo ./vaezoo
COPY conf ./conf
RUN python3.11 -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt . \
    && /opt/venv/bin/pip check

# A non-root user; runs and data live in volumes, W&B's own files in /tmp so any --user works.
RUN useradd --create-home --uid 1000 vaezoo \
    && mkdir -p /runs /data \
    && chown vaezoo:vaezoo /runs /data
# VAEZOO_LOCK and VAEZOO_CONTAINER go into every job's results.json (environment), so reproduce= can
# tell whether a job ran in this image and with this lock.
ENV PATH=/opt/venv/bin:$PATH \
    VAEZOO_LOCK=/opt/vaezoo/constraints.txt \
    VAEZOO_CONTAINER=1 \
    VAEZOO_RUNS=/runs \
    VAEZOO_DATA=/data \
    WANDB_CONFIG_DIR=/tmp/wandb-config \
    WANDB_CACHE_DIR=/tmp/wandb-cache \
    MPLCONFIGDIR=/tmp/matplotlib
USER 1000:1000
WORKDIR /runs
VOLUME ["/runs", "/data"]

ENTRYPOINT ["python", "-m", "vaezoo"]
CMD ["--help"]
