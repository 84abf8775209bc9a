# Satchel server image. Build: docker build -t satchel .
# Run:   docker run -p 50051:50051 \
#          -e ALIBABA_CLOUD_ACCESS_KEY_ID -e ALIBABA_CLOUD_ACCESS_KEY_SECRET satchel
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# Build stage: install the package, exactly as `make run` does but not editable,
# into a self-contained virtualenv that the runtime stage copies.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/satchel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY clients ./clients
RUN /opt/satchel/bin/pip install .

# Runtime stage: no compilers, no sources, no root.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin satchel
COPY --from=build /opt/satchel /opt/satchel
COPY deploy/satchel.container.toml /etc/satchel/satchel.toml
ENV PATH=/opt/satchel/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SATCHEL_CONFIG=/etc/satchel/satchel.toml
USER 10001
EXPOSE 50051
# SIGTERM starts the drain; give it longer than grace_seconds before SIGKILL.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["satchel", "health"]
CMD ["satchel", "serve"]
