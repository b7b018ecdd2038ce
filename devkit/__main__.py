"""``python -m devkit demo|standin``: the local demo and the Bot API stand-in, from a checkout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.settings import load_settings
from hematovision.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the whole stack locally, with a sample conversation")
    demo.add_argument("--image", type=Path, help="image to send instead of the bundled sample")
    standin = sub.add_parser("standin", help="serve the Bot API stand-in")
    standin.add_argument("--port", type=int, default=8081)
    standin.add_argument("--token", default="123456:STANDIN")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from devkit.demo import run_demo

        # The demo prints its own story; its children keep their full logs in the data dir.
        configure_logging("WARNING")
        return run_demo(load_settings(), args.image)
    from devkit.standin import serve_forever

    configure_logging("INFO")
    serve_forever(args.token, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
