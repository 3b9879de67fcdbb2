# The adapter and the simulated model server in one image:
#   inference-adapter serve        (the default command)
#   model-server ...               (set `command: ["model-server"]` in the pod spec)
#
#   docker build -t inference-metrics-adapter:0.1.0 .
#
# Runtime dependencies come pinned from requirements.lock (how to refresh it: its header).
# The base image is pinned to a patch release; bump both FROM lines together.

# --- builder: wheels for the pinned dependencies and the project, installed into /opt/venv ---
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first, so that code changes do not rebuild them; and the project's build backend,
# pinned (the project wheel is built without build isolation, so no unpinned setuptools is fetched).
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels --requirement requirements.lock \
    && pip install --no-cache-dir setuptools==80.9.0

COPY pyproject.toml README.md ./
COPY adapter ./adapter
COPY model_server ./model_server
COPY localcluster ./localcluster
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# A venv without pip, filled by the builder's pip from the local wheels only: the install fails if
# requirements.lock misses a dependency.
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --no-index --find-links /wheels \
        --requirement requirements.lock /wheels/inference_metrics_adapter-*.whl

# --- runtime: the interpreter, the venv, a non-root user; no compilers, no pip, no setuptools ---
FROM python:3.11.13-slim-bookworm

LABEL org.opencontainers.image.title="inference-metrics-adapter" \
      org.opencontainers.image.description="Custom and external metrics API adapter for inference pods, and a simulated model server" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"

RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && groupadd --system --gid 65532 app \
    && useradd --system --no-log-init --uid 65532 --gid 65532 \
        --home-dir /home/app --create-home --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /home/app
USER 65532:65532

# 6443: the adapter (HTTPS); 8080: the model server (HTTP).
EXPOSE 6443 8080

CMD ["inference-adapter", "serve"]
