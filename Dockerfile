# The Tawasul image used by docker-compose.yml: every `tawasul` command, PostgreSQL driver included.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
# Every dependency pinned with its SHA-256 hash (docs/security.md), then Tawasul itself.
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY tawasul ./tawasul
COPY schemas ./schemas
COPY producers ./producers
COPY stream_processors ./stream_processors
COPY sinks ./sinks
RUN pip install --no-cache-dir --no-deps --no-build-isolation .
RUN useradd --create-home tawasul && mkdir -p /var/lib/tawasul/state && chown tawasul /var/lib/tawasul/state
USER tawasul
ENTRYPOINT ["tawasul"]
CMD ["--help"]
