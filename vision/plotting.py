"""matplotlib for files only: reports and charts are written, never shown."""

from __future__ import annotations

from types import ModuleType


def headless_pyplot() -> ModuleType:
    """pyplot on the Agg backend, imported on first use (it is slow to import and only the
    commands and handlers that draw need it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot
