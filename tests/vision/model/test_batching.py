"""Dynamic batching gives every caller exactly its own predictions, from shared forward passes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH
from vision.model.batching import DynamicBatcher
from vision.model.classifier import CellClassifier

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "pbc").glob("*.jpg"))


def _concurrently(calls: list) -> list:  # type: ignore[type-arg]
    results: list = [None] * len(calls)  # type: ignore[type-arg]
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_requests_share_passes_and_get_their_own_rows_back() -> None:
    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return x.sum(dim=(1, 2, 3), keepdim=False)[:, None] * torch.ones(1, 2), x[:, 0, 0, 0]

    batcher = DynamicBatcher(forward, max_batch=64, max_wait=0.2)
    inputs = [torch.full((n, 1, 2, 2), float(i)) for i, n in enumerate([1, 3, 2, 5, 1, 4])]
    outputs = _concurrently([lambda x=x: batcher(x) for x in inputs])
    for x, (probs, ood) in zip(inputs, outputs, strict=True):
        expected_probs, expected_ood = forward(x)
        assert torch.equal(probs, expected_probs) and torch.equal(ood, expected_ood)
    assert batcher.batches_run < len(inputs)  # some requests really shared a pass
    assert batcher.rows_run == sum(len(x) for x in inputs)
    batcher.close()


def test_a_failing_pass_fails_every_caller_instead_of_hanging() -> None:
    def broken(_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise RuntimeError("device lost")

    batcher = DynamicBatcher(broken, max_batch=8, max_wait=0.01)
    with pytest.raises(RuntimeError, match="device lost"):
        batcher(torch.zeros(1, 1, 1, 1))
    batcher.close()


@pytest.mark.parametrize("screen", [None, ABNORMAL_MODEL_PATH], ids=["alone", "screened"])
def test_the_batched_classifier_predicts_what_the_plain_one_does(screen: Path | None) -> None:
    plain = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", screen=screen)
    batched = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu", screen=screen)
    batched.enable_dynamic_batching(max_batch=32, max_wait=0.05)
    cells = [Image.open(p).convert("RGB") for p in FIXTURES]
    groups = [cells[:1], cells[1:4], cells[4:6], cells[6:]]
    together = _concurrently([lambda g=g: batched.scores(g) for g in groups])
    for group, (probs, ood) in zip(groups, together, strict=True):
        expected_probs, expected_ood = plain.scores(group)
        # Different batch compositions may pick different kernels: equal to float precision.
        assert torch.allclose(probs, expected_probs, atol=1e-5)
        assert ood is not None and expected_ood is not None
        assert torch.allclose(ood, expected_ood, rtol=1e-4)
        assert probs.argmax(1).tolist() == expected_probs.argmax(1).tolist()


def test_the_torchscript_network_predicts_what_the_eager_one_does() -> None:
    eager = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    compiled = CellClassifier.from_artifact(DEFAULT_MODEL_PATH, "cpu")
    compiled.compile_for_cpu()
    cells = [Image.open(p).convert("RGB") for p in FIXTURES]
    for batch in (cells[:1], cells):  # the traced graph serves any batch size
        probs, ood = compiled.scores(batch)
        expected_probs, expected_ood = eager.scores(batch)
        assert torch.allclose(probs, expected_probs, atol=1e-5)
        assert ood is not None and expected_ood is not None
        assert torch.allclose(ood, expected_ood, rtol=1e-4)
        assert probs.argmax(1).tolist() == expected_probs.argmax(1).tolist()
