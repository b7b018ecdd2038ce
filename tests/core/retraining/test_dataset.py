"""Which base images a retraining replays beside the expert-labelled cells, and how the expert's
cells are shown to it."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.retraining.dataset import (
    expert_crop,
    learnable,
    per_class_sample,
    proportional_sample,
    readable_crops,
)
from core.reviews import ExpertExample
from core.storage import FolderBlobs, ImageStore
from lab.bccd import read_boxes
from tests.conftest import FIXTURES, pbc_fixtures
from vision.field.analyse import frame_side
from vision.field.detect import box_centre
from vision.field.scale import image_scale
from vision.labels import ALL_CLASSES, PBC_CLASSES

# An unbalanced base set, like PBC's: many neutrophils, few basophils.
COUNTS = {label: 4 for label in PBC_CLASSES} | {"neutrophil": 20, "basophil": 2}


@pytest.fixture
def unbalanced(tmp_path: Path) -> Path:
    for label, path in pbc_fixtures().items():
        (tmp_path / label).mkdir()
        for copy in range(COUNTS[label]):
            shutil.copy(path, tmp_path / label / f"{copy}-{path.name}")
    return tmp_path


def _counts(samples: list) -> Counter[str]:
    return Counter(PBC_CLASSES[s.label] for s in samples)


def test_proportional_replay_keeps_the_class_proportions_of_the_base_set(
    unbalanced: Path,
) -> None:
    chosen = proportional_sample(unbalanced, PBC_CLASSES, 0.5, seed=0)
    assert _counts(chosen) == {label: n // 2 for label, n in COUNTS.items()}


def test_proportional_replay_keeps_at_least_one_of_every_class(unbalanced: Path) -> None:
    counts = _counts(proportional_sample(unbalanced, PBC_CLASSES, 0.1, seed=0))
    assert counts["neutrophil"] == 2
    assert set(counts) == set(PBC_CLASSES)


def test_replay_samples_are_the_same_for_the_same_seed(unbalanced: Path) -> None:
    def replay(seed: int) -> list:
        return proportional_sample(unbalanced, PBC_CLASSES, 0.5, seed)

    assert replay(3) == replay(3)
    assert replay(3) != replay(4)


def test_balanced_replay_takes_the_same_number_of_every_class_where_it_can(
    unbalanced: Path,
) -> None:
    assert _counts(per_class_sample(unbalanced, PBC_CLASSES, 3, seed=0)) == (
        {label: 3 for label in PBC_CLASSES} | {"basophil": 2})


def test_a_model_that_names_more_classes_replays_the_base_sets_under_its_own_indices(
    unbalanced: Path,
) -> None:
    # A model that also knows the abnormal classes retrains on a base set that holds only the
    # normal ones: the labels are the model's indices, every base class still replayed.
    chosen = per_class_sample(unbalanced, ALL_CLASSES, 3, seed=0)
    assert Counter(ALL_CLASSES[s.label] for s in chosen) == (
        {label: 3 for label in PBC_CLASSES} | {"basophil": 2})


def test_an_expert_label_the_model_does_not_name_waits_for_a_model_that_does() -> None:
    blast = ExpertExample("a", (0, 0, 9, 9), whole_image=True, label="blast")
    neutrophil = ExpertExample("b", (0, 0, 9, 9), whole_image=True, label="neutrophil")
    assert learnable([blast, neutrophil], PBC_CLASSES) == [neutrophil]
    assert learnable([blast, neutrophil], ALL_CLASSES) == [blast, neutrophil]


def test_an_experts_close_up_is_learnt_as_the_classifier_was_shown_it() -> None:
    # Framed as PBC frames its cells, the path classified it as the photographer framed it.
    image = Image.open(pbc_fixtures()["lymphocyte"]).convert("RGB")
    example = ExpertExample("sha", (60, 60, 190, 190), whole_image=True, label="lymphocyte")
    assert np.array_equal(np.asarray(expert_crop(image, example)), np.asarray(image))


def test_an_experts_field_cell_is_centred_on_its_box_at_pbcs_framing() -> None:
    field = Image.open(FIXTURES / "bccd" / "BloodImage_00007.jpg").convert("RGB")
    [box] = read_boxes(FIXTURES / "bccd" / "BloodImage_00007.xml")["wbc"]
    crop = expert_crop(field, ExpertExample("sha", box, whole_image=False, label="neutrophil"))
    assert crop.size == (frame_side(image_scale(field)),) * 2
    centre = box_centre(box)
    expected = field.crop((round(centre[0] - 10), round(centre[1] - 10),
                           round(centre[0] + 10), round(centre[1] + 10)))
    middle = crop.width // 2
    seen = crop.crop((middle - 10, middle - 10, middle + 10, middle + 10))
    assert np.abs(np.asarray(seen, dtype=np.float32)
                  - np.asarray(expected, dtype=np.float32)).mean() < 1.0


def test_an_expert_cell_whose_photo_is_missing_or_damaged_is_left_out_and_counted(
    tmp_path: Path,
) -> None:
    blobs = FolderBlobs(tmp_path)
    store = ImageStore(blobs)
    cells = [store.put(Image.open(pbc_fixtures()[label]).convert("RGB")).sha256
             for label in ("lymphocyte", "monocyte", "eosinophil")]
    blobs.delete(cells[1])  # purged behind the row's back
    damaged = blobs.path_of(cells[2])
    assert damaged is not None
    damaged.write_bytes(b"X" + damaged.read_bytes()[1:])
    examples = [ExpertExample(sha, (0, 0, 9, 9), whole_image=True, label="lymphocyte")
                for sha in cells]
    crops, unreadable = readable_crops(examples, store)
    assert [example.image_sha256 for example, _crop in crops] == [cells[0]]
    assert unreadable == 2
