"""Beyond one machine: the bot, an inference worker and a training worker that share nothing
but PostgreSQL and Redis. Each runs with its own empty HV_DATA_DIR, as it would on its own
host; photos, annotated pictures and model weights travel through the database's blob store.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pypdfium2
import pytest
from sqlalchemy import select, update

from core.db.models import Blob, Case, ModelVersion, Submission
from core.db.session import transaction
from devkit.harness import Stack, running_stack
from tests.conftest import FIXTURES, fixture_image_folder, fresh_postgres_database, pbc_fixtures
from tests.e2e.test_cases_and_retraining import (
    _finished_job,
    _version_of,
    roll_back_and_promote_again,
    say,
)

ADMIN = 901
CELLS = pbc_fixtures()


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("hosts")
    config = root / "retrain.json"
    # Learning rate 0: the candidate reproduces its parent, so the gate passes quickly.
    config.write_text(json.dumps({"replay_fraction": 1.0, "val_per_class": 1, "epochs": 1,
                                  "resolution": 64, "batch_size": 16, "lr": 0.0,
                                  "expert_repeats": 1, "threads": 2}))
    env = {"HV_ADMIN_IDS": str(ADMIN), "HV_STORAGE_BACKEND": "database",
           "HV_RETRAIN_CONFIG": str(config)}
    with fresh_postgres_database() as url, \
            running_stack(root, url, redis_url, env, separate_hosts=True) as running:
        # Only the training host has the base data set, under its own setting.
        base = running.data_dir("trainer") / "datasets" / "pbc"
        for split in ("train", "val", "test"):
            fixture_image_folder(base / split)
        running.start_worker("trainer", training=True, env={"HV_TRAINING_DATA_DIR": str(base)})
        yield running


def local_files(stack: Stack, name: str, folder: str) -> list[Path]:
    return [p for p in (stack.data_dir(name) / folder).rglob("*") if p.is_file()]


def test_a_field_photo_is_answered_with_its_picture_from_the_shared_store(stack: Stack) -> None:
    user = stack.new_user()
    field = FIXTURES / "bccd" / "BloodImage_00015.jpg"
    stack.standin.send_document(user, field.read_bytes(), field.name, "image/jpeg")
    assert "Field analysis" in (stack.result_for(user).text or "")
    [picture] = stack.standin.wait_for(user, 1, predicate=lambda a: a.method == "sendPhoto")
    [submission] = stack.delivered_submissions(user)
    with stack.sessions() as session:
        stored = {sha: bytes(data) for sha, data in session.execute(
            select(Blob.sha256, Blob.data).where(Blob.sha256.in_(
                [submission.sha256, submission.annotated_sha256])))}
    assert set(stored) == {submission.sha256, submission.annotated_sha256}
    assert picture.file == stored[submission.annotated_sha256]
    for name in ("bot", "worker", "trainer"):
        assert local_files(stack, name, "images") == [], name

    with stack.sessions() as session:
        case = session.get(Case, submission.case_id)
        assert case is not None
    csv_doc, pdf_doc = say(stack, user, f"/export {case.reference}", replies=2)
    assert csv_doc.file is not None and pdf_doc.file is not None
    rows = list(csv.DictReader(io.StringIO(csv_doc.file.decode())))
    assert len(rows) == len(submission.cells)
    pdf = pypdfium2.PdfDocument(io.BytesIO(pdf_doc.file))
    assert len(pdf) == 2  # the summary and the photo's page, its picture read from the store


def test_retraining_on_another_host_is_served_after_promote_and_rolls_back(
        stack: Stack) -> None:
    tech = stack.new_user()
    base = _version_of(stack, tech)
    with stack.sessions() as session:
        base_sha = session.scalars(select(ModelVersion.sha256)
                                   .where(ModelVersion.version == base)).one()

    queued, = say(stack, ADMIN, "/retrain")
    final = _finished_job(stack, queued, ADMIN)[-1].text or ""
    assert "Passed the gate and is now active" in final, final
    candidate = f"{base}-rt1"
    with stack.sessions() as session:
        candidate_sha = session.scalars(select(ModelVersion.sha256)
                                        .where(ModelVersion.version == candidate)).one()
        assert session.get(Blob, candidate_sha) is not None  # published by the trainer

    # The trainer fetched its parent into its own cache; the worker fetches the candidate.
    trainer_cache = local_files(stack, "trainer", "cache/models")
    assert stack.data_dir("trainer") / "cache" / "models" / f"{base_sha}.safetensors" \
        in trainer_cache
    assert _version_of(stack, tech) == candidate
    assert stack.data_dir("worker") / "cache" / "models" / f"{candidate_sha}.safetensors" \
        in local_files(stack, "worker", "cache/models")

    roll_back_and_promote_again(stack, ADMIN, tech, base, candidate)
    with stack.sessions() as session:
        submissions = session.scalars(select(Submission.id)).all()
    assert submissions and local_files(stack, "bot", "images") == []


def test_a_corrupted_model_in_the_shared_store_is_refused_by_its_hash(stack: Stack) -> None:
    with stack.sessions() as session:
        active = session.scalars(select(ModelVersion).where(ModelVersion.is_active,
                                                            ModelVersion.group_id.is_(None))).one()
    with transaction(stack.sessions) as session:
        session.execute(update(Blob).where(Blob.sha256 == active.sha256)
                        .values(data=b"not the weights"))
    # A worker on a new host, with nothing cached, must fetch the active version.
    stack.stop("worker")
    stack.start_worker("new-host")
    user = stack.new_user()
    stack.standin.send_photo(user, CELLS["neutrophil"].read_bytes())
    result = stack.result_for(user)
    assert "failed on our side" in (result.text or ""), stack.logs()
    [row] = stack.delivered_submissions(user)
    assert row.error and "BlobIntegrityError" in row.error and "SHA-256" in row.error
    assert local_files(stack, "new-host", "cache/models") == []  # nothing untrusted kept
