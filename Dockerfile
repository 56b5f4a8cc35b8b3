# aTES: one image, every service. `docker compose` (docker-compose.yml) runs it as
# `ates serve SERVICE` per container and `ates migrate` once; see docs/operations.md.

# The base image by its full version; the dependencies from the lock, each file by its hash
# (requirements/main.txt), so that two builds of one commit install the same code.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements/main.txt ./requirements/
RUN python -m venv /opt/ates \
    && /opt/ates/bin/pip install --require-hashes -r requirements/main.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/ates/bin/pip install --no-deps .

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/ates/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ATES_ENVIRONMENT=production \
    ATES_HOST=0.0.0.0 \
    ATES_DATA_DIR=/var/lib/ates
COPY --from=build /opt/ates /opt/ates
COPY deploy/entrypoint.sh /usr/local/bin/ates-entrypoint
# An unprivileged user; /var/lib/ates/secrets becomes a shared volume owned by it.
RUN useradd --system --uid 10001 --home-dir /var/lib/ates ates \
    && mkdir -p /var/lib/ates/secrets \
    && chown -R ates:ates /var/lib/ates \
    && chmod 0700 /var/lib/ates/secrets \
    && chmod 0755 /usr/local/bin/ates-entrypoint
USER ates
WORKDIR /var/lib/ates
# auth 8000, tasks 8001, billing 8002, analytics 8003, notifications 8004 (health only)
EXPOSE 8000 8001 8002 8003 8004
ENTRYPOINT ["ates-entrypoint"]
CMD ["--help"]
