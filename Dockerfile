# One image for the API, the worker and the migrations (the command picks; docker-compose.yml and
# deploy/kubernetes do). Dependencies come from requirements.lock, every one checked by its hash;
# the Temporal dev server binary is not in it (it is `redrive[dev]`, for `redrive dev` only).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/redrive
COPY requirements.lock /build/
RUN /opt/redrive/bin/pip install --no-cache-dir --require-hashes --no-deps -r /build/requirements.lock
COPY pyproject.toml README.md /build/
COPY redrive /build/redrive
COPY redrive_cli /build/redrive_cli
# The build backend (setuptools) is the lock's too: no isolated build fetching unpinned packages.
RUN /opt/redrive/bin/pip install --no-cache-dir --no-deps --no-build-isolation /build \
    && /opt/redrive/bin/python -m compileall -q -j 0 /opt/redrive/lib

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 redrive \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin redrive
COPY --from=build /opt/redrive /opt/redrive
COPY worker.py /app/worker.py
WORKDIR /app
ENV PATH=/opt/redrive/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REDRIVE_API_HOST=0.0.0.0 \
    REDRIVE_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000 9464
# The API answers /healthz on 8000; a worker on its REDRIVE_METRICS_PORT (set REDRIVE_HEALTHCHECK_URL).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['REDRIVE_HEALTHCHECK_URL'], timeout=4)"]
CMD ["python", "worker.py"]
