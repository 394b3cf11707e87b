# ratesvc: one image, installed with requirements.lock as constraints, so the
# versions it ships are the ones `make audit` checked.
FROM python:3.11-slim

# 1 also installs the upstream simulators (packages/ratesvc-sim), which
# RATESVC_SIMULATE=1 needs; by default the image carries only the service.
ARG WITH_SIMULATORS=0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RATESVC_HOST=0.0.0.0 \
    RATESVC_PORT=8000 \
    RATESVC_DATA_DIR=/var/lib/ratesvc

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY src ./src
# The simulators' source is mounted for this step only, never copied into a layer.
RUN --mount=type=bind,source=packages/ratesvc-sim,target=/tmp/ratesvc-sim,rw \
    pip install -c requirements.lock . \
    && if [ "$WITH_SIMULATORS" = 1 ]; then pip install -c requirements.lock /tmp/ratesvc-sim; fi \
    && useradd --system --uid 10001 --home-dir /var/lib/ratesvc --create-home ratesvc

# Numeric, so the runtime (and Kubernetes runAsNonRoot) can tell it is not root.
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=2).status != 200)"]
ENTRYPOINT ["ratesvc"]
CMD ["serve"]
