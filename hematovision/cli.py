"""The ``hematovision`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.settings import SettingsError, load_settings
from hematovision.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hematovision", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    classify = sub.add_parser("classify", help="classify image files (no services needed)")
    classify.add_argument("images", nargs="+", type=Path)
    classify.add_argument("--json", action="store_true", help="one JSON object per image")
    classify.add_argument("--model", type=Path, help="model weights (.safetensors)")
    classify.add_argument("--annotate", type=Path, metavar="OUT_DIR",
                          help="write an annotated PNG per field photo into OUT_DIR")
    classify.add_argument("--calibration", type=Path,
                          help="a laboratory's measured trust (``hematovision stats --group G "
                               "--calibration FILE``); without, every answer is to confirm, as "
                               "for a new laboratory")

    train = sub.add_parser("train", help="fine-tune the classifier on an image-folder data set")
    train.add_argument("--data", type=Path, required=True, help="folder with train/ val/ test/")
    train.add_argument("--config", type=Path, help="JSON training recipe (vision.training.config)")
    train.add_argument("--out", type=Path, default=Path("var/runs/latest"),
                       help="run folder: checkpoints (resumable) and the model")
    train.add_argument("--device", default="auto",
                       help="where the epochs run: auto (CUDA when present), cpu, cuda")

    evaluate = sub.add_parser("evaluate", help="evaluate a model on an image-folder tree")
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--json", action="store_true", help="one JSON object on stdout")
    evaluate.add_argument("--model", type=Path, help="model weights (.safetensors)")
    evaluate.add_argument("--png", type=Path, default=Path("confusion_matrix.png"),
                          help="where to write the confusion matrix picture")
    evaluate.add_argument("--mistakes-png", type=Path,
                          help="also write a contact sheet of the misclassified cells here")

    adapt = sub.add_parser("adapt", help="adapt a model to one laboratory from its labelled "
                                         "cells (folder names = labels)")
    adapt.add_argument("--examples", type=Path, required=True,
                       help="image folder of the laboratory's labelled cells")
    adapt.add_argument("--out", type=Path, required=True, help="folder for the adapted model")
    adapt.add_argument("--model", type=Path, help="the model to adapt (default: the shipped one)")
    adapt.add_argument("--version", help="the adapted model's version name")
    adapt.add_argument("--check", type=Path,
                       help="held-out labelled cells of the same laboratory: accuracy before "
                            "and after, recorded in the card")
    adapt.add_argument("--base-cells", type=Path,
                       help="image folder of the base model's own training cells (e.g. PBC "
                            "train): kept by distillation on them, for adding a whole labelled "
                            "source rather than a few cells")
    adapt.add_argument("--framing", choices=["path", "as-given"], default="path",
                       help="frame each cell as the analysis path frames a close-up's cell for "
                            "the classifier (default: the laboratory's cells are learnt as the "
                            "bot will show them), or take each image whole")
    adapt.add_argument("--zoom", type=float, default=1.0,
                       help="also learn every cell (and base cell) zoomed by a factor drawn "
                            "log-uniformly within [1/ZOOM, ZOOM], as a misread scale frames it "
                            "(default 1: off; v8, not shipped, used 1.43: BENCHMARKS.md)")
    adapt.add_argument("--replay", type=Path,
                       help="adapt the network's last blocks too, not only its head, replaying "
                            "a few of the base model's own cells from this image folder (e.g. "
                            "PBC train) so that it keeps them: minutes rather than seconds")

    sub.add_parser("bot", help="run the Telegram bot (long polling)")

    worker = sub.add_parser("worker", help="run a classification (or training) worker")
    worker.add_argument("--concurrency", type=int,
                        help="tasks at once, in threads with dynamic batching "
                             "(default: HV_WORKER_CONCURRENCY, 1)")
    worker.add_argument("--name", help="Celery node name, e.g. cpu1@%%h")
    worker.add_argument("--training", action="store_true",
                        help="serve retraining jobs (the training queue) instead")

    db = sub.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?")

    storage = sub.add_parser("storage", help="move local images and models into the shared "
                                             "store (the database)")
    storage.add_argument("action", choices=["migrate"])

    purge = sub.add_parser("purge", help="delete photos older than the retention period "
                                         "(results, open cases and expert-labelled cells stay)")
    purge.add_argument("--days", type=int, help="the period (default: HV_RETENTION_DAYS)")
    purge.add_argument("--dry-run", action="store_true", help="only say what would go")

    stats = sub.add_parser("stats", help="a laboratory's agreement with the bot (per week, "
                                         "model version and class) and its trust")
    stats.add_argument("--group", required=True, help="the laboratory (group) name")
    stats.add_argument("--calibration", type=Path,
                       help="also write its measured trust here, for classify --calibration")

    sub.add_parser("health", help="exit 0 when the database, broker and file store answer")

    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"hematovision: {exc}", file=sys.stderr)
        return 2
    if args.command == "classify":
        configure_logging("WARNING")
        from hematovision.classify_cli import run_classify

        return run_classify(settings, args.images, args.json, args.model, args.annotate,
                            args.calibration)
    if args.command == "stats":
        from hematovision.stats_cli import run_stats

        return run_stats(settings, args.group, args.calibration)
    if args.command == "health":
        from hematovision.storage_cli import run_health

        return run_health(settings)
    configure_logging("INFO")
    if args.command == "storage":
        from hematovision.storage_cli import run_migrate

        return run_migrate(settings)
    if args.command == "purge":
        from hematovision.storage_cli import run_purge

        return run_purge(settings, args.days, args.dry_run)
    if args.command in ("train", "evaluate"):
        from hematovision.training_cli import run_evaluate, run_train

        if args.command == "train":
            return run_train(settings, args.data, args.config, args.out, args.device)
        return run_evaluate(settings, args.folder, args.model, args.json, args.png,
                            args.mistakes_png)
    if args.command == "adapt":
        from hematovision.adapt_cli import run_adapt

        return run_adapt(args.model or settings.model_path, args.examples, args.out,
                         args.version, args.check, args.base_cells, args.framing, args.zoom,
                         args.replay)
    if args.command == "bot":
        from bot.app import run_bot

        run_bot(settings)
    elif args.command == "worker":
        from worker.app import run_worker

        if args.concurrency:
            settings = settings.model_copy(update={"worker_concurrency": args.concurrency})
        run_worker(settings, hostname=args.name, training=args.training)
    elif args.command == "db":
        from core.db import migrate

        settings.ensure_dirs()
        if args.action == "upgrade":
            migrate.upgrade(settings.resolved_database_url, args.revision or "head")
        else:
            migrate.downgrade(settings.resolved_database_url, args.revision or "-1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
