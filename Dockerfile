# Gongshe (工社) in a container. Not built or run on the development machine (no Docker engine there): see README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A user without a login shell or home directory of value; the bot never needs root.
RUN groupadd --system gongshe && useradd --system --gid gongshe --home-dir /app --shell /usr/sbin/nologin gongshe

WORKDIR /app
# Survey charts draw Chinese labels with WenQuanYi Micro Hei (charts.py).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei && rm -rf /var/lib/apt/lists/*
# Production pins only (test and lint tools are in requirements-dev.lock).
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY --chown=gongshe:gongshe . .
# data/ holds the SQLite file and its backups; mount a volume there (compose.yaml does).
RUN mkdir -p /app/data && chown gongshe:gongshe /app/data
VOLUME ["/app/data"]

USER gongshe
# Webhook mode listens here (bot.webhook_listen must then be 0.0.0.0 and bot.webhook_port 8443).
EXPOSE 8443
CMD ["python", "bot.py", "run"]
