# Two images from one file:
#
#   docker build --target api    --build-arg VERSION=0.1.0 -t rushes-api:0.1.0 .
#   docker build --target worker --build-arg VERSION=0.1.0 -t rushes-worker:0.1.0 .
#
# `api` serves the HTTP API and runs migrations and the background roles (webhooks,
# cleanup); it installs the project without torch. `worker` adds the training and
# rendering stack (`.[worker]`): torch from PyPI is the CUDA build on Linux x86_64, so
# it runs on GPU nodes through the NVIDIA container runtime with no CUDA base image.
# Both run as an unprivileged user and keep nothing writable but /tmp and /data, which
# the Helm chart mounts as emptyDir volumes (the root filesystem is read-only there).
# tests/helm/test_dockerfile.py checks these properties.

ARG PYTHON_IMAGE=python:3.12-slim-trixie

# --- build stages: compilers live here only --------------------------------------------

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip setuptools wheel

FROM builder AS api-build
WORKDIR /src
COPY . .
RUN pip install .

FROM builder AS worker-build
ARG TORCH_VERSION=2.13.0
# torch first, in its own layer: it is most of the image and changes least often.
RUN pip install "torch==${TORCH_VERSION}"
WORKDIR /src
COPY . .
RUN pip install ".[worker]"

# --- runtime: what both final images share ---------------------------------------------

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.vendor="Rushes" \
      org.opencontainers.image.licenses="LicenseRef-Proprietary" \
      org.opencontainers.image.description="Rushes: private LoRA fine-tunes of open video models"
# A fixed numeric user, so Kubernetes can check runAsNonRoot against the image.
RUN groupadd --system --gid 10001 rushes \
    && useradd --system --uid 10001 --gid rushes --home-dir /home/rushes --create-home \
       --shell /usr/sbin/nologin rushes \
    && install -d -o rushes -g rushes -m 0750 /data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/rushes \
    RUSHES_DATA_DIR=/data \
    RUSHES_LOG__JSON_FORMAT=true
WORKDIR /home/rushes
ENTRYPOINT ["rushes-server"]

# --- final images ----------------------------------------------------------------------

FROM runtime AS worker
LABEL org.opencontainers.image.title="rushes-worker"
# What the NVIDIA container runtime should expose; the device plugin picks the GPUs.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=worker-build /opt/venv /opt/venv
USER 10001:10001
CMD ["worker", "--roles", "train,generate"]

FROM runtime AS api
LABEL org.opencontainers.image.title="rushes-api"
# This image has no torch, so `serve` starts no embedded worker. (The chart also sets
# RUSHES_SERVER__MIGRATE=false: its hook Job migrates before the API rolls.)
ENV RUSHES_WORKER__EMBEDDED=false
COPY --from=api-build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
