# The adapter service. Settings come from ADAPTER_* variables (README); see docker-compose.yml
# and docs/operations.md (Docker).
FROM python:3.11.7-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/adapter --uid 10001 adapter

WORKDIR /src
# The same pinned, hash-checked versions as `make run` (requirements/run.txt, `make lock`),
# in a layer of their own that a code change does not rebuild.
COPY requirements/run.txt ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/run.txt
COPY pyproject.toml README.md ./
COPY adapter ./adapter
COPY mappings ./mappings
# The build backend is pinned in the lock too: nothing unpinned is fetched for the build.
RUN pip install --no-deps --no-build-isolation . && rm -rf /src

USER adapter
WORKDIR /home/adapter
# The default SQLite file lands in the (writable) home directory unless ADAPTER_DATABASE_URL
# points elsewhere.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ADAPTER_PORT', '8080'), timeout=4)"]
CMD ["adapter", "serve", "--host", "0.0.0.0"]
