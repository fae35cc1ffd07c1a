# The adapter service. Settings come from ADAPTER_* variables (README); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/adapter --uid 10001 adapter

WORKDIR /src
COPY pyproject.toml README.md ./
COPY adapter ./adapter
COPY mappings ./mappings
RUN pip install '.[postgres]' && rm -rf /src

USER adapter
WORKDIR /home/adapter
# The default SQLite file lands in the (writable) home directory unless ADAPTER_DATABASE_URL
# points elsewhere.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ADAPTER_PORT', '8080'), timeout=4)"]
CMD ["adapter", "serve", "--host", "0.0.0.0"]
