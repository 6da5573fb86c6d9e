# intake: the bot, the admin web and the CLI in one image.
# Build: docker build -t intake .
# Run:   docker run --rm -v intake-data:/var/lib/intake -e INTAKE_KDF_PROFILE=moderate intake init
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY intake_bot ./intake_bot
COPY admin ./admin
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 intake \
    && useradd --system --uid 10001 --gid intake --home-dir /var/lib/intake --shell /usr/sbin/nologin intake \
    && mkdir -p /var/lib/intake \
    && chown intake:intake /var/lib/intake \
    && chmod 700 /var/lib/intake
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INTAKE_DATA_DIR=/var/lib/intake \
    INTAKE_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/intake
VOLUME ["/var/lib/intake"]
EXPOSE 8080
ENTRYPOINT ["intake"]
CMD ["--help"]
