"""One settings object, read from the environment (prefix ``HV_``) once and passed in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vision.weights import WEIGHTS_DIR

DEFAULT_MODEL_PATH = WEIGHTS_DIR / "pbc-bionet-lite0-v7.safetensors"
# The version v7 replaced, shipped so that a deployment can roll back to it (v4a, beside them,
# is where v5's recipe starts, and the faster 224 px option).
PREVIOUS_MODEL_PATH = WEIGHTS_DIR / "pbc-lite0-ft-v5.safetensors"
# Names blasts and the other abnormal classes beside the normal eight, but costs other
# laboratories' normal cells (BENCHMARKS.md): a choice for a deployment, not the default.
# (v9, beside it, is where its recipe starts.)
ABNORMAL_MODEL_PATH = WEIGHTS_DIR / "hv-lite0-v10-abnormal.safetensors"
# Red-cell centre network (weights .safetensors and card .json share this stem).
DEFAULT_RED_CELL_MODEL_PATH = WEIGHTS_DIR / "rbc-centres-v3"


def without_password(url: str) -> str:
    """``url`` fit to print or log: any password replaced by ``***``, in the user part
    (``user:pw@host``) and in the query (libpq's ``?password=``, Redis' ``?password=``)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
        return url  # as given: rebuilding would drop the empty host of sqlite:////path
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{netloc[1]}")
    return urlunsplit(parts._replace(query="&".join(
        f"{key}=***" if key.lower() in _SECRET_QUERY_KEYS else f"{key}={value}"
        for key, value in pairs)))


_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword", "auth"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HV_", env_file=".env", extra="ignore")

    bot_token: SecretStr | None = None
    data_dir: Path = Path("var")
    database_url: str | None = None
    broker_url: str | None = None
    storage_dir: Path | None = None
    # Photos, annotated pictures and model weights: "folder" (storage_dir, one host) or
    # "database" (a table of the database, so workers on other hosts share nothing else).
    storage_backend: Literal["folder", "database"] = "folder"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    bot_api_base_url: str = "https://api.telegram.org/bot"
    bot_api_file_url: str = "https://api.telegram.org/file/bot"
    # Webhook mode (deployment behind HTTPS): Telegram posts updates to webhook_url, which a
    # reverse proxy forwards to webhook_listen:webhook_port; every post must carry the secret.
    # Unset: long polling.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443

    model_path: Path = DEFAULT_MODEL_PATH
    # The model that knows blasts screens every cell the model above names
    # (vision.model.screen): blasts and promonocytes are named beside the model's own classes.
    # Empty: none (the model alone; a model that names blasts itself needs none).
    screen_model_path: Path | None = ABNORMAL_MODEL_PATH
    device: str = "auto"
    # Red cells of a field: a trained centre network at this path, or the colour rule if empty.
    red_cell_model_path: Path | None = DEFAULT_RED_CELL_MODEL_PATH
    # Intra-op threads per worker process. Two workers with two threads each on two cores spin
    # against each other (OpenMP busy-waiting): one thread per worker, one worker per core, was
    # 6x the throughput of torch's default here (BENCHMARKS.md). 0 = torch's default.
    torch_threads: int = 1
    # CPU workers run the network as frozen, optimised TorchScript (measured faster).
    torchscript: bool = True
    # On a CPU with native bfloat16 (AVX512-BF16, AMX), cells are scored in bfloat16 first and
    # only the close calls again in fp32 (vision.model.classifier: labels as fp32's).
    bf16_first: bool = True
    # A worker runs this many tasks at once in threads; above one, their cells share forward
    # passes (dynamic batching: up to batch_max_size cells, waiting at most batch_max_wait_ms).
    worker_concurrency: int = 1
    # A photo's task still running after this long stops its worker (worker/deadline.py): a
    # 12 MP field takes seconds on a CPU, a first task's model load a few more.
    task_time_limit_seconds: float = Field(default=300.0, gt=0)
    batch_max_size: int = 32
    batch_max_wait_ms: float = 5.0

    # Telegram refuses getFile above 20 MB, so larger documents can never be fetched.
    max_upload_bytes: int = 20_000_000
    max_image_pixels: int = 60_000_000
    classify_queue: str = "classify"
    training_queue: str = "training"
    # Base data (train/val/test folders) that retraining replays and the gate evaluates on;
    # a deployment names its own copy (no default: retraining says so when it is missing).
    training_data_dir: Path | None = None
    # A laboratory's admins are told, once per own model version, that /adapt could help when
    # its experts have reviewed this many new cells (core.laboratory.propose_adaptation).
    propose_adaptation_after: int = Field(default=50, ge=1)
    # Retraining recipe (JSON, core.retraining.config); read anew by every job.
    retrain_config: Path | None = None
    delivery_poll_seconds: float = 0.5
    # Redis redelivers a task whose worker died after this long; it must exceed the longest
    # task (a retraining job, up to 30 min) or that task would run twice.
    broker_visibility_timeout: float = 3600.0
    # Photos older than this many days are deleted by `hematovision purge` (results stay;
    # open cases and expert-labelled cells are kept). Unset: kept forever.
    retention_days: int | None = None
    # Uploads kept in the image store, in bytes, before new photos are refused (with a message
    # saying so) until `hematovision purge` or a larger quota frees room. Unset: no quota.
    storage_quota_bytes: int | None = None
    # Above this many photos waiting for a worker (all users), new photos are refused with one
    # polite "busy" answer per user and minute, instead of waiting an unbounded time.
    max_queue_depth: int = 1000
    # Per user: messages of any kind, and photos, per minute.
    max_messages_per_minute: int = 40
    max_photos_per_minute: int = 20
    # The bot keeps retrying the database this long, and tells the user after a few seconds.
    db_retry_seconds: float = 60.0
    db_slow_notice_seconds: float = 4.0
    # A submission unfinished this long is enqueued again (lost message, dead worker).
    requeue_after_seconds: float = 600.0

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's rule for secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -; at least
        # 32 of them, so that it cannot be guessed (`openssl rand -hex 16` makes one).
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{32,256}",
                                                  value.get_secret_value()):
            raise ValueError("32-256 characters of A-Z, a-z, 0-9, _ and - "
                             "(for example: openssl rand -hex 16)")
        return value

    @field_validator("red_cell_model_path", "screen_model_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # HV_RED_CELL_MODEL_PATH= (empty) chooses the colour rule; HV_SCREEN_MODEL_PATH= none.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # Accept "1,2,3" from the environment as well as a JSON list.
        if isinstance(value, str) and not value.strip().startswith("["):
            return [int(part) for part in value.replace(" ", "").split(",") if part]
        if isinstance(value, int):
            return [value]
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Settings end up in logs and tracebacks: the URLs' passwords must not.
        for name, value in super().__repr_args__():
            yield name, (without_password(value) if name in ("database_url", "broker_url")
                         and isinstance(value, str) else value)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hematovision.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "images").resolve()

    @property
    def resolved_broker_url(self) -> str:
        # With no Redis configured, kombu's filesystem transport needs no server at all.
        return self.broker_url or "filesystem://"

    @property
    def models_dir(self) -> Path:
        """Where retrained model versions are written (the registry's files)."""
        return (self.data_dir / "models").resolve()

    @property
    def cache_dir(self) -> Path:
        return (self.data_dir / "cache").resolve()

    @property
    def broker_folder(self) -> Path:
        return (self.data_dir / "broker").resolve()

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.resolved_storage_dir.mkdir(parents=True, exist_ok=True)
        if self.resolved_broker_url.startswith("filesystem"):
            for sub in ("queue", "processed", "control"):
                (self.broker_folder / sub).mkdir(parents=True, exist_ok=True)


class SettingsError(Exception):
    """The environment does not make valid settings; the message names each variable and
    why, never the value given (it may be a secret)."""


def load_settings() -> Settings:
    """The settings from the environment and ``.env``, built once at a process's start."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"HV_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False))
        raise SettingsError(f"invalid settings: {problems}") from None
