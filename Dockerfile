# syntax=docker/dockerfile:1.7
# vaezoo in a container, two images from this one file (docs/scaling-out.md#docker):
#   docker build --target cpu -t vaezoo:cpu .    torch's CPU wheels, no CUDA libraries
#   docker build --target cuda -t vaezoo:cuda .  torch's CUDA 13 wheels (PyPI); the host brings the
#                                                driver (>= 580) through `docker run --gpus all`
# Both start from the same Python 3.11 (the release the tests run on), pinned by digest. BASE replaces
# it, e.g. with a local stand-in where no image registry can be reached (docs/scaling-out.md).
# Layers go from what changes least to most: torch, then the rest of the lock, then vaezoo itself
# (--no-deps), so an edit of the code, the configs or the README rebuilds in seconds.
ARG BASE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

FROM ${BASE} AS python
# VAEZOO_LOCK and VAEZOO_CONTAINER go into every job's results.json (environment), so reproduce= can
# tell whether a job ran in an image and with which lock. Every cache goes under /tmp, so that any
# --user "$(id -u):$(id -g)" works; runs and data live in volumes.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    VAEZOO_LOCK=/opt/vaezoo/constraints.txt \
    VAEZOO_CONTAINER=1 \
    VAEZOO_RUNS=/runs \
    VAEZOO_DATA=/data \
    WANDB_CONFIG_DIR=/tmp/wandb-config \
    WANDB_CACHE_DIR=/tmp/wandb-cache \
    MPLCONFIGDIR=/tmp/matplotlib
# The user 1000 runs the image when `docker run` has no --user.
RUN python3 -m venv /opt/venv \
    && useradd --create-home --uid 1000 vaezoo \
    && mkdir -p /runs /data \
    && chown vaezoo:vaezoo /runs /data
VOLUME ["/runs", "/data"]
ENTRYPOINT ["python", "-m", "vaezoo"]
CMD ["--help"]
WORKDIR /opt/vaezoo
COPY constraints.txt ./

# vaezoo's runtime dependencies, read from pyproject.toml in a stage of their own: the COPY of the
# result below is cached by its content, so editing anything else in pyproject.toml rebuilds nothing.
FROM python AS requirements
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt

# torch and torchvision (versions from the lock) from TORCH_INDEX_URL; pip's downloads stay in a
# BuildKit cache between builds. Two optional build secrets reach a package index behind a TLS proxy
# without entering the image: pip_conf (a pip.conf, e.g. `cert = /run/secrets/pip_ca`) and pip_ca.
FROM python AS torch-cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip_ca \
    pip install -c constraints.txt --index-url "$TORCH_INDEX_URL" torch torchvision

# Each target: the rest of the lock, then vaezoo without dependencies (its files last).
FROM torch-cpu AS cpu
COPY --from=requirements /opt/vaezoo/requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip_ca \
    pip install -c constraints.txt -r requirements.txt setuptools
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY vaezoo ./vaezoo
RUN pip install --no-cache-dir -c constraints.txt --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf build ./*.egg-info
USER 1000:1000
WORKDIR /runs

FROM python AS torch-cuda
ARG TORCH_INDEX_URL=https://pypi.org/simple
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip_ca \
    pip install -c constraints.txt --index-url "$TORCH_INDEX_URL" torch torchvision
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM torch-cuda AS cuda
COPY --from=requirements /opt/vaezoo/requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    --mount=type=secret,id=pip_conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip_ca \
    pip install -c constraints.txt -r requirements.txt setuptools
COPY pyproject.toml README.md ./
COPY conf ./conf
COPY vaezoo ./vaezoo
RUN pip install --no-cache-dir -c constraints.txt --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf build ./*.egg-info
USER 1000:1000
WORKDIR /runs
