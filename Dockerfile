# One image for the bot, the workers and the migration job.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HV_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY bot ./bot
COPY worker ./worker
COPY hematovision ./hematovision
COPY migrations ./migrations
COPY models ./models
RUN pip install -e . && useradd --create-home hv && mkdir -p /data && chown hv /data
USER hv
ENTRYPOINT ["hematovision"]
