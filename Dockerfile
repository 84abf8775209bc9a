# Satchel server image.
#   docker build -t satchel .
#   docker run --read-only -p 50051:50051 -p 9090:9090 \
#     -e ALIBABA_CLOUD_ACCESS_KEY_ID -e ALIBABA_CLOUD_ACCESS_KEY_SECRET \
#     -v $PWD/satchel.toml:/etc/satchel/satchel.toml:ro satchel
# The base image is pinned by exact version; pin it by digest too in your own
# registry mirror (FROM python:3.11.11-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/satchel
WORKDIR /src
# Runtime dependencies first, in their own layer: editing the sources does not
# reinstall them. The lists are read from the server's and the client's
# pyproject.toml, the one place each lives; `satchel` (the client) is left out:
# it comes from this tree below, never from an index.
COPY pyproject.toml README.md ./
COPY clients/python/pyproject.toml ./clients/python/
RUN python -c "import re, tomllib; deps = [d for f in ('pyproject.toml', 'clients/python/pyproject.toml') for d in tomllib.load(open(f, 'rb'))['project']['dependencies']]; print('\n'.join(d for d in deps if not re.match(r'satchel(?![\w.-])', d)))" > /tmp/requirements.txt \
    && /opt/satchel/bin/pip install --compile -r /tmp/requirements.txt
# Then the client and the server themselves, exactly as the Makefile installs
# them (not editable): the local client is what satisfies the server's `satchel`.
COPY service ./service
COPY clients ./clients
RUN /opt/satchel/bin/pip install --compile --no-deps ./clients/python .

# Runtime stage: no compilers, no sources, no root, nothing written at run time
# (bytecode is compiled at build time), so it runs with a read-only root file system.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin satchel
COPY --from=build /opt/satchel /opt/satchel
COPY deploy/satchel.container.toml /etc/satchel/satchel.toml
ENV PATH=/opt/satchel/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SATCHEL_CONFIG=/etc/satchel/satchel.toml
USER 10001
# gRPC, and Prometheus metrics when [metrics] is enabled.
EXPOSE 50051 9090
# SIGTERM starts the drain (health NOT_SERVING, in-flight calls finish within
# server.grace_seconds). Give the orchestrator a longer grace than that before
# SIGKILL: terminationGracePeriodSeconds >= grace_seconds + 5.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["satchel", "health"]
CMD ["satchel", "serve"]
