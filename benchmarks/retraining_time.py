"""Wall time of one default retraining on this machine, with simulated expert corrections.

    python -m benchmarks.retraining_time [--data ../shared/data/pbc] [--experts-per-class 6]
        [--config FILE] [--misclassified N]

Expert-labelled cells are simulated with PBC training images stored as close-up submissions
(the job cannot tell them from real ones). The default recipe then replays a sample of the base
training set, fine-tunes the active (shipped) model, calibrates, evaluates candidate and active
model on the whole test split, and applies the gate, exactly as ``/retrain`` does.

By default the simulated experts confirm labels the model already gives (cost, and no harm).
With ``--misclassified N`` they correct up to N training cells the active model gets wrong
(found by classifying the train split as served, remembered in the work folder), so the run
shows whether corrections are learnt.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks.paths import PBC, WORK
from core.access import Sender, ensure_user
from core.cases import case_for_upload
from core.db import migrate
from core.db.models import CellResult, Submission, utcnow
from core.db.session import make_engine, make_session_factory, transaction
from core.enums import Role, SubmissionStatus
from core.registry import register_model
from core.retraining.config import RetrainConfig
from core.retraining.run import RetrainSetup, run_retraining
from core.settings import DEFAULT_MODEL_PATH
from core.storage import FolderBlobs, ImageStore
from core.storage.models import ModelFiles
from vision.data import Sample, index_image_folder
from vision.labels import PBC_CLASSES
from vision.model.artifact import read_card
from vision.model.classifier import CellClassifier


def misclassified(train: list[Sample], limit: int, remembered: Path) -> list[Sample]:
    """The first ``limit`` (in path order) of the training cells the active model labels
    otherwise than PBC does."""
    if not remembered.exists():
        classifier = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
        wrong: list[str] = []
        started = time.monotonic()
        for start in range(0, len(train), 32):
            chunk = train[start:start + 32]
            images = []
            for sample in chunk:
                with Image.open(sample.path) as image:
                    images.append(image.convert("RGB"))
            predicted = classifier.probabilities(images).argmax(1).tolist()
            wrong += [str(s.path) for s, p in zip(chunk, predicted, strict=True) if p != s.label]
            if (start // 32) % 50 == 0:
                print(f"  scanned {start + len(chunk)}/{len(train)}, {len(wrong)} wrong, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        remembered.parent.mkdir(parents=True, exist_ok=True)
        remembered.write_text(json.dumps(wrong))
    wrong_paths = set(json.loads(remembered.read_text()))
    return [s for s in train if str(s.path) in wrong_paths][:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=PBC)
    parser.add_argument("--experts-per-class", type=int, default=6)
    parser.add_argument("--config", type=Path, default=None,
                        help="a retraining recipe (JSON), as HV_RETRAIN_CONFIG; the default one")
    parser.add_argument("--misclassified", type=int, default=None,
                        help="experts correct up to N train cells the active model gets wrong")
    parser.add_argument("--work", type=Path, default=WORK / "bench-retrain")
    args = parser.parse_args()
    shutil.rmtree(args.work / "db", ignore_errors=True)
    (args.work / "db").mkdir(parents=True)
    url = f"sqlite:///{args.work / 'db' / 'bench.db'}"
    migrate.upgrade(url)
    sessions = make_session_factory(make_engine(url))
    store = ImageStore(FolderBlobs(args.work / "images"))
    model_id = register_model(sessions, read_card(DEFAULT_MODEL_PATH), str(DEFAULT_MODEL_PATH))

    train = index_image_folder(args.data / "train", PBC_CLASSES)
    if args.misclassified is None:
        rng = random.Random(1)
        experts = [s for label in range(len(PBC_CLASSES)) for s in
                   rng.sample([t for t in train if t.label == label], args.experts_per_class)]
    else:
        remembered = f"misclassified-{read_card(DEFAULT_MODEL_PATH).sha256[:12]}.json"
        experts = misclassified(train, args.misclassified, args.work / remembered)
        print(f"experts correct {len(experts)} train cells the active model gets wrong")
    with transaction(sessions) as session:
        user = ensure_user(session, Sender(1, "bench", "Benchmark"), admin_ids=[1])
        assert user.role is Role.OWNER
        case = case_for_upload(session, user, utcnow())
        assert case is not None
        for number, sample in enumerate(experts):
            with Image.open(sample.path) as image:
                stored = store.put(image.convert("RGB"))
            submission = Submission(user_id=user.id, case_id=case.id, chat_id=1,
                                    message_id=number, source="document", sha256=stored.sha256,
                                    status=SubmissionStatus.DONE, mode="cell")
            session.add(submission)
            session.flush()
            label = PBC_CLASSES[sample.label]
            session.add(CellResult(submission_id=submission.id, index=0, kind="cell",
                                   label=label, confidence=1.0, expert_label=label,
                                   box_x0=0, box_y0=0, box_x1=1, box_y1=1,
                                   model_version_id=model_id))

    started = time.monotonic()

    def sink(stage: str, details: dict[str, Any]) -> None:
        if stage != "training" or details.get("step", 0) % 10 == 0:
            print(f"[{(time.monotonic() - started) / 60:5.1f} min] {stage} {details}", flush=True)

    config = RetrainConfig.from_file(args.config)
    setup = RetrainSetup(sessions, store, ModelFiles(store.blobs, args.work / "cache", sessions),
                         args.work / "models", args.work / "cache", args.data,
                         config)
    outcome = run_retraining(setup, job_id=1, sink=sink)
    gate = outcome.gate
    print(f"\nretraining {outcome.version}: {outcome.minutes:.1f} min in total on this machine")
    print(f"expert-labelled cells {outcome.expert_examples} (x{config.expert_repeats}), "
          f"replayed {outcome.replay_examples}, epochs {config.epochs} at "
          f"{config.resolution or 'the active model'} px")
    cells = outcome.expert_cells
    print(f"expert-labelled cells given their label: candidate {cells['candidate']} of "
          f"{cells['of']}, active {cells['active']}")
    print(f"test accuracy: candidate {gate.candidate_accuracy:.4f}, active "
          f"{gate.baseline_accuracy:.4f}; gate {'passed' if gate.passed else 'failed'} "
          f"{gate.reasons}")


if __name__ == "__main__":
    main()
