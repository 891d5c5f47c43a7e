# syntax=docker/dockerfile:1
# The winback worker image: `winback run` as a non-root user, the default rules baked in
# (the Helm chart mounts its rules ConfigMap over /etc/winback/rules).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY handlers ./handlers
RUN python -m venv /opt/winback \
 && /opt/winback/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="winback" \
      org.opencontainers.image.description="Turns CRM events from RabbitMQ into win-back tasks in Salesforce or an embedded CRM" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --system --gid 10001 winback \
 && useradd --system --uid 10001 --gid winback --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin winback \
 && mkdir -p /var/lib/winback \
 && chown winback:winback /var/lib/winback
COPY --from=build /opt/winback /opt/winback
COPY config/rules.yaml /etc/winback/rules/rules.yaml
COPY config/templates/ /etc/winback/rules/templates/
COPY config/sources.yaml /etc/winback/sources/sources.yaml
ENV PATH=/opt/winback/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WINBACK_RULES=/etc/winback/rules/rules.yaml \
    WINBACK_BRIDGE_SOURCES=/etc/winback/sources/sources.yaml \
    WINBACK_LOCAL_CRM_PATH=/var/lib/winback/crm.sqlite3 \
    WINBACK_METRICS_PORT=9102 \
    WINBACK_LOG_FORMAT=json
WORKDIR /var/lib/winback
USER 10001:10001
EXPOSE 9102
ENTRYPOINT ["winback"]
CMD ["run"]
