"""Per-process worker state: database, storage and the model, each created once and lazily."""

from __future__ import annotations

import logging
from functools import cached_property

import torch
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import make_engine, make_session_factory
from core.field.analyse import analyse
from core.field.annotate import annotate
from core.model.classifier import CellClassifier
from core.settings import Settings
from core.storage import ImageStore
from core.submissions import record_failure, register_model, start_processing, store_results

log = logging.getLogger(__name__)


class WorkerRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(make_engine(self.settings.resolved_database_url))

    @cached_property
    def store(self) -> ImageStore:
        return ImageStore(self.settings.resolved_storage_dir)

    @cached_property
    def classifier(self) -> CellClassifier:
        # Loaded on first use in the process that runs tasks (after any fork), then kept warm.
        if self.settings.torch_threads > 0:
            torch.set_num_threads(self.settings.torch_threads)
        classifier = CellClassifier.from_artifact(self.settings.model_path, self.settings.device)
        log.info("model %s loaded on %s", classifier.version, classifier.device)
        return classifier

    @cached_property
    def model_version_id(self) -> int:
        return register_model(self.sessions, self.classifier.card, str(self.settings.model_path))

    def classify(self, submission_id: int) -> None:
        sha256 = start_processing(self.sessions, submission_id)
        if sha256 is None:
            log.info("submission %s already finished; nothing to do", submission_id)
            return
        try:
            image = self.store.open(sha256)
        except (OSError, ValueError) as exc:
            record_failure(self.sessions, submission_id, f"stored image unreadable: {exc}")
            return
        analysis = analyse(image, self.classifier)
        annotated = None
        if analysis.mode == "field" and not analysis.rejected:
            annotated = self.store.put(annotate(image, analysis)).sha256
        written = store_results(self.sessions, submission_id, analysis, self.model_version_id,
                                annotated)
        log.info("submission %s: %s, %d cell(s), written=%s", submission_id, analysis.mode,
                 len(analysis.cells), written)
