"""``hematovision stats --group G``: a laboratory's agreement with the bot, and its trust."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.db.session import make_engine, make_session_factory
from core.laboratory import Standing, breakdown, group_id_named, standing
from core.settings import Settings


def standing_lines(found: Standing) -> list[str]:
    return [f"laboratory {found.group}: serving {found.version or '-'}",
            f"agreement with its experts (first answer kept): "
            f"{found.agreement.overall.text()} reviewed cells", *breakdown(found, weeks=52),
            found.trust.line()]


def run_stats(settings: Settings, group: str, calibration: Path | None) -> int:
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    group_id = group_id_named(sessions, group)
    if group_id is None:
        print(f"no laboratory named {group!r}", file=sys.stderr)
        return 2
    found = standing(sessions, group_id)
    print("\n".join(standing_lines(found)))
    if calibration is not None:
        # What ``classify --calibration`` reads: the trust belongs to one version.
        calibration.write_text(json.dumps({"laboratory": found.group, "version": found.version,
                                           "trust": found.trust.to_dict()}, indent=2))
        print(f"calibration written to {calibration}")
    return 0
