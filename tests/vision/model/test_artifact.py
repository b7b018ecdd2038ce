"""Model artifacts are safetensors plus a card, and a tampered file is refused."""

from pathlib import Path

import pytest
import torch

from vision.labels import PBC_CLASSES
from vision.model.artifact import ModelCard, ModelIntegrityError, load_artifact, save_artifact
from vision.model.efficientnet_lite import EfficientNetLite


def _saved(tmp_path: Path) -> tuple[Path, EfficientNetLite]:
    torch.manual_seed(1)
    model = EfficientNetLite(num_classes=len(PBC_CLASSES)).eval()
    path = tmp_path / "m.safetensors"
    save_artifact(model, ModelCard(version="t1", classes=list(PBC_CLASSES)), path)
    return path, model


def test_a_saved_artifact_loads_to_the_same_model(tmp_path: Path) -> None:
    path, model = _saved(tmp_path)
    loaded, card, _ = load_artifact(path)
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))
    assert card.classes == list(PBC_CLASSES)
    assert len(card.sha256) == 64


def test_a_corrupted_weights_file_is_refused(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        load_artifact(path)


def test_the_artifact_is_not_a_pickle(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path)
    assert not path.read_bytes().startswith(b"\x80")  # pickle protocol marker
    assert path.read_bytes()[:2] != b"PK"  # nor a torch.save zip


class _Payload:
    """Unpickling this would create a file: the proof that pickle code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_a_pickle_posing_as_a_model_is_never_unpickled(tmp_path: Path) -> None:
    import hashlib
    import pickle

    path, _ = _saved(tmp_path)
    marker = tmp_path / "pickle-code-ran"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    # Even with a card that matches the hostile file, loading fails without running its code.
    card = path.with_suffix(".json")
    card.write_text(card.read_text().replace(
        ModelCard.model_validate_json(card.read_text()).sha256,
        hashlib.sha256(path.read_bytes()).hexdigest()))
    with pytest.raises(Exception) as refused:
        load_artifact(path)
    assert not isinstance(refused.value, ModelIntegrityError)  # it passed the hash check...
    assert not marker.exists()  # ...and safetensors still refused to run anything


def test_the_card_names_the_network_saved_and_loading_builds_that_network(
    tmp_path: Path,
) -> None:
    model = EfficientNetLite(num_classes=len(PBC_CLASSES), architecture="efficientnet_lite2")
    path = tmp_path / "lite2.safetensors"
    # The caller's card keeps the default architecture: the saved card must not.
    card = save_artifact(model.eval(), ModelCard(version="t2", classes=list(PBC_CLASSES)), path)
    assert card.architecture == "efficientnet_lite2"
    loaded, loaded_card, _ = load_artifact(path)
    assert loaded_card.architecture == "efficientnet_lite2"
    x = torch.randn(1, 3, 260, 260)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))
