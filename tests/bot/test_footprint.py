"""The bot reads results but never runs a network: importing it must not load torch (0.8 GB)."""

import subprocess
import sys


def test_the_bot_does_not_import_torch() -> None:
    probe = ("import sys, bot.app; "
             "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
