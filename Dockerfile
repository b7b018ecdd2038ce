# One image for the bot, the workers and the migration job: a plain (non-editable) install of the
# runtime packages; lab/, devkit/, benchmarks/ and tests/ stay out.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HV_DATA_DIR=/data
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY vision ./vision
COPY core ./core
COPY bot ./bot
COPY worker ./worker
COPY hematovision ./hematovision
COPY migrations ./migrations
# The locked versions, each checked against its hash; then the project without resolving again.
RUN pip install --require-hashes -r requirements.lock && pip install --no-deps . && rm -rf /src && useradd --create-home hv && mkdir -p /data && chown hv /data
WORKDIR /data
USER hv
ENTRYPOINT ["hematovision"]
