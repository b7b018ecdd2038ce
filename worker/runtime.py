"""Per-process worker state: database, storage and the active model, each created once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch

from core.db.session import SessionFactory, make_engine, make_session_factory
from core.laboratory import serving_trust
from core.registry import ModelRef, active_model, register_model
from core.settings import Settings
from core.storage import ImageStore, blob_store
from core.storage.models import ModelFiles
from core.submissions import (
    picture_caption,
    record_failure,
    start_processing,
    store_results,
    submission_group,
)
from core.trust import apply as apply_trust
from vision.field.analyse import analyse
from vision.field.annotate import annotate
from vision.field.learned_red_cells import load_red_cell_finder
from vision.model.artifact import ModelIntegrityError, verified_card
from vision.model.classifier import CellClassifier
from worker.deadline import Deadlines

log = logging.getLogger(__name__)
# Versions kept in memory at once (about 15 MB each): the laboratory-wide one and a few
# laboratories' own; another is loaded again when needed.
MAX_LOADED_MODELS = 8


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.use_torch_threads()
        self.deadlines = Deadlines(settings.task_time_limit_seconds)
        # Loaded versions by registry id: the laboratory-wide one and laboratories' own.
        self._loaded: dict[int, CellClassifier] = {}
        self._offered = False  # the configured model is in the registry
        self._lock = threading.Lock()
        # Engines connect lazily, so creating one here opens nothing. Tasks may run in threads:
        # the pool gives each its own connection.
        url = settings.resolved_database_url
        extra = {} if url.startswith("sqlite") else {
            "pool_size": max(5, settings.worker_concurrency + 2)}
        self.sessions: SessionFactory = make_session_factory(make_engine(url, **extra))
        self.store = ImageStore(blob_store(settings, self.sessions))
        self.models = ModelFiles(self.store.blobs, settings.cache_dir, self.sessions)
        self.red_cells = load_red_cell_finder(settings.red_cell_model_path)

    def use_torch_threads(self) -> None:
        """The configured torch threads, in the calling thread: the setting is each thread's
        own (OpenMP), so set only where the model was loaded (the warm-up's thread), tasks kept
        torch's default and two workers' threads spun against each other (load 14 -> 3.6
        photos/s). Called where tasks run: the solo pool's thread, or each of a thread pool's."""
        wanted = self.settings.torch_threads
        if wanted > 0 and torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    def _load(self, path: Path) -> CellClassifier:
        self.use_torch_threads()
        classifier = CellClassifier.from_artifact(path, self.settings.device,
                                                  self.settings.bf16_first,
                                                  self.settings.screen_model_path)
        if self.settings.torchscript and classifier.device.type == "cpu":
            classifier.compile_for_cpu()
        if self.settings.worker_concurrency > 1:
            classifier.enable_dynamic_batching(self.settings.batch_max_size,
                                               self.settings.batch_max_wait_ms / 1000)
        log.info("model %s loaded on %s", classifier.version, classifier.device)
        return classifier

    def current_model(self, group_id: int | None = None) -> tuple[ModelRef, CellClassifier]:
        """The version serving ``group_id`` (its laboratory's own, else the laboratory-wide
        one), loaded once and swapped when an admin switches.

        One small query per task is the price of picking up /promote and /rollback without a
        restart. The shipped model seeds an empty registry; a newer one shipped to a running
        deployment joins as a candidate for an admin to /promote, not behind their back.
        """
        with self._lock:
            if not self._offered:
                self._offer_configured_model()
            ref = active_model(self.sessions, group_id)
            assert ref is not None  # registering into an empty registry activates
            if ref.id not in self._loaded:
                classifier = self._load(self.models.local_path(ref))
                if classifier.card.sha256 != ref.sha256:
                    raise RuntimeError(f"model file {ref.path} is not the registered "
                                       f"{ref.version} (SHA-256 differs)")
                if len(self._loaded) >= MAX_LOADED_MODELS:
                    self._loaded.pop(next(iter(self._loaded)))  # the longest loaded goes
                self._loaded[ref.id] = classifier
            return ref, self._loaded[ref.id]

    def warm_up(self) -> None:
        """The laboratory-wide model loaded and run before the first task: loading, freezing
        both networks and their first runs took a cold worker's first album 3.1 s, a warm
        one's 1.7 (``benchmarks.load``)."""
        _, classifier = self.current_model()
        classifier.warm_up()

    def _offer_configured_model(self) -> None:
        path = self.settings.model_path
        try:
            card = verified_card(path)
            self.models.publish(path)
            register_model(self.sessions, card, str(path))
        except ModelIntegrityError:
            if active_model(self.sessions) is None:
                raise  # nothing else to serve: the first task fails loudly
            # A broken new file must not stop the version that is serving.
            log.exception("configured model %s not offered to the registry", path)
        self._offered = True

    def classify(self, submission_id: int) -> None:
        self.use_torch_threads()
        sha256 = start_processing(self.sessions, submission_id)
        if sha256 is None:
            log.info("submission %s already finished; nothing to do", submission_id)
            return
        # Limited once its start is recorded, so that every stop counts as an attempt.
        with self.deadlines.limit(submission_id):
            self._analyse(submission_id, sha256)

    def _analyse(self, submission_id: int, sha256: str) -> None:
        try:
            image = self.store.open(sha256)
        except (OSError, ValueError) as exc:
            record_failure(self.sessions, submission_id, f"stored image unreadable: {exc}")
            return
        group_id = submission_group(self.sessions, submission_id)
        ref, classifier = self.current_model(group_id)
        trust = serving_trust(self.sessions, group_id, ref.id)
        analysis = apply_trust(analyse(image, classifier, red_cells=self.red_cells), trust)
        annotated = None
        if analysis.mode == "field" and not analysis.rejected:
            caption = picture_caption(self.sessions, submission_id)
            annotated = self.store.put(annotate(image, analysis, caption),
                                       for_display=True).sha256
        written = store_results(self.sessions, submission_id, analysis, ref.id, annotated,
                                trust)
        log.info("submission %s: %s, %d cell(s), model %s, written=%s", submission_id,
                 analysis.mode, len(analysis.cells), ref.version, written)
