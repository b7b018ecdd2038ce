"""One optimisation step, with and without a teacher that keeps the old classes' answers."""

from __future__ import annotations

import torch

from vision.labels import ALL_CLASSES, PBC_CLASSES
from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.augment import AugmentConfig
from vision.training.finetune import epoch_order, with_more_classes
from vision.training.step import Teacher, train_step


def _models() -> tuple[EfficientNetLite, EfficientNetLite]:
    torch.manual_seed(0)
    teacher = EfficientNetLite(num_classes=len(PBC_CLASSES)).eval()
    student = EfficientNetLite(num_classes=len(PBC_CLASSES))
    student.load_state_dict(teacher.state_dict())
    return teacher, with_more_classes(student, len(ALL_CLASSES))


def test_a_student_that_answers_as_its_teacher_disagrees_with_it_by_nothing() -> None:
    teacher, student = _models()
    x = torch.rand(4, 3, 64, 64)
    taught = Teacher(teacher, weight=1.0, temperature=2.0)
    # The student's new classes take no part: only its first (the teacher's) logits are compared.
    with torch.no_grad():
        disagreement = taught.disagreement(x, student.eval()(x), None)
    assert float(disagreement) < 1e-6


def test_a_teacher_pulls_the_old_classes_back_towards_its_answers() -> None:
    teacher, student = _models()
    with torch.no_grad():
        student.classifier.bias[:len(PBC_CLASSES)] += torch.linspace(-2, 2, len(PBC_CLASSES))
    taught = Teacher(teacher, weight=1.0, temperature=2.0)
    images = (torch.rand(8, 3, 72, 72) * 255).to(torch.uint8)
    x = torch.rand(8, 3, 64, 64)
    with torch.no_grad():
        before = float(taught.disagreement(x, student.eval()(x), None))
    optimiser = torch.optim.SGD(student.classifier.parameters(), lr=1.0)
    # Eval mode: BatchNorm statistics stay the teacher's, so only the head can disagree.
    student.eval()
    for _ in range(20):
        # Labels of a new class only: the cross-entropy says nothing about the old classes.
        train_step(student, optimiser, images, torch.full((8,), len(PBC_CLASSES)),
                   resolution=64, augment=AugmentConfig(), lr=1.0,
                   generator=torch.Generator().manual_seed(0), label_smoothing=0.0,
                   teacher=taught)
    with torch.no_grad():
        after = float(taught.disagreement(x, student.eval()(x), None))
    assert after < before / 2


def test_an_epoch_draws_part_of_the_main_split_and_every_extra_image() -> None:
    order = epoch_order(images=130, base=100, drawn=30, generator=torch.Generator().manual_seed(1))
    assert len(order) == 60 and len(set(order.tolist())) == 60
    assert set(range(100, 130)) <= set(order.tolist())
    assert sum(index < 100 for index in order.tolist()) == 30


def test_an_epoch_of_the_whole_main_split_is_a_plain_shuffle() -> None:
    order = epoch_order(images=50, base=40, drawn=40, generator=torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(50))
