# One image for the bot, the workers and the migration job: a plain (non-editable) install of the
# runtime packages; lab/, devkit/, benchmarks/ and tests/ stay out.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HV_DATA_DIR=/data
WORKDIR /src
COPY pyproject.toml README.md ./
COPY vision ./vision
COPY core ./core
COPY bot ./bot
COPY worker ./worker
COPY hematovision ./hematovision
COPY migrations ./migrations
RUN pip install . && rm -rf /src && useradd --create-home hv && mkdir -p /data && chown hv /data
WORKDIR /data
USER hv
ENTRYPOINT ["hematovision"]
