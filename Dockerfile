# The engine image: worker (default command), Kado simulator and the `offramp` CLI.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY offramp ./offramp
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 offramp \
    && mkdir -p /data /config && chown offramp /data /config
USER offramp

CMD ["python", "-m", "worker"]
