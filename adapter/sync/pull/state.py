"""A pull channel's progress, kept in `sync_state` (`adapter.store.pull_state`) and committed
with every page.

See adapter.sync.pull.puller for what the fields mean; instants are stored as ISO 8601 in UTC with
milliseconds, the precision FHIR servers give `meta.lastUpdated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mappings.common.lookup import obj
from mappings.jsontypes import JsonObject


@dataclass
class Run:
    """A channel's run under way (see adapter.sync.pull.puller)."""

    until: datetime | None
    top: int
    done: int
    after: datetime | None


@dataclass
class ChannelState:
    cursor: datetime | None = None
    upto: int = 0
    run: Run | None = None

    @classmethod
    def of(cls, data: JsonObject) -> ChannelState:
        run = obj(data.get("run"))
        return cls(
            cursor=instant(data.get("cursor")),
            upto=_int(data.get("upto")),
            run=Run(
                until=instant(run.get("until")),
                top=_int(run.get("top")),
                done=_int(run.get("done")),
                after=instant(run.get("after")),
            )
            if run
            else None,
        )

    def as_json(self) -> JsonObject:
        run: JsonObject | None = None
        if self.run is not None:
            run = {
                "until": format_or_none(self.run.until),
                "top": self.run.top,
                "done": self.run.done,
                "after": format_or_none(self.run.after),
            }
        return {"cursor": format_or_none(self.cursor), "upto": self.upto, "run": run}


def instant(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def format_or_none(instant: datetime | None) -> str | None:
    return None if instant is None else format_instant(instant)


def format_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds")
