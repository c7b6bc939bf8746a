# ferrocorn in a container. Stage 1 builds the wheel from this source tree (Rust + maturin);
# stage 2 is a slim Python with only that wheel installed, running as a non-root user, with
# ferrocorn itself as PID 1 (it handles TERM/INT/QUIT/HUP/TTIN/TTOU/USR1/USR2 and reaps every
# child, so no init shim is needed).
#
#   docker build -t ferrocorn .
#   docker run --rm -p 8000:8000 -e WEB_CONCURRENCY=4 ferrocorn            # serves examples/hello.py
#   docker run --rm -p 8000:8000 -v "$PWD:/app:ro" ferrocorn myproject.wsgi  # your app in /app
#
# Settings work as with Gunicorn: arguments after the image name, a gunicorn.conf.py in /app,
# GUNICORN_CMD_ARGS, PORT (the default bind, 0.0.0.0:$PORT) and WEB_CONCURRENCY (the default
# number of workers). Prometheus metrics are served on port 9100 (/metrics), with /healthz,
# which the HEALTHCHECK polls, and /readyz beside them. docs/deploy.md has the details; scripts/container-smoke runs the runtime
# stage's steps (user, environment, entrypoint, command, healthcheck) outside a container
# engine, so keep the two in step.
ARG PYTHON_VERSION=3.12

FROM docker.io/library/rust:1-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --no-cache-dir 'maturin>=1.5,<2'
WORKDIR /src
COPY . .
RUN /opt/maturin/bin/maturin build --release --locked --out /wheels

FROM docker.io/library/python:${PYTHON_VERSION}-slim-bookworm
COPY --from=build /wheels /tmp/wheels
RUN python -m venv /opt/ferrocorn \
    && /opt/ferrocorn/bin/pip install --no-cache-dir --no-index /tmp/wheels/ferrocorn-*.whl \
    && rm -rf /tmp/wheels \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin ferrocorn
COPY examples/hello.py /app/
ENV PATH=/opt/ferrocorn/bin:$PATH \
    VIRTUAL_ENV=/opt/ferrocorn \
    PYTHONUNBUFFERED=1 \
    PORT=8000
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000 9100
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=2)"]
# Exec form: ferrocorn is PID 1 and receives `docker stop`'s SIGTERM itself (a graceful stop,
# bounded by --graceful-timeout; give `docker stop -t` a little more than that).
ENTRYPOINT ["ferrocorn", "--metrics-bind", "0.0.0.0:9100"]
CMD ["hello:app"]
