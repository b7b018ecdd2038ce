"""The command line's fixtures: the core ones, for the commands that read the database."""

from tests.core.conftest import lab, sessions  # noqa: F401  (fixtures re-exported)
