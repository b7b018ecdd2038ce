"""A sliding-window limit per key (a Telegram user), pure: the caller passes the clock."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    tell: bool  # refused, and the first refusal in this window: say so once, then stay quiet


@dataclass
class RateLimiter:
    max_events: int
    per_seconds: float
    _events: dict[int, deque[float]] = field(default_factory=dict)
    _told: dict[int, float] = field(default_factory=dict)

    def check(self, key: int, now: float) -> Verdict:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.per_seconds:
            events.popleft()
        if len(events) < self.max_events:
            events.append(now)
            return Verdict(True, False)
        told_at = self._told.get(key)
        tell = told_at is None or told_at <= now - self.per_seconds
        if tell:
            self._told[key] = now
        return Verdict(False, tell)

    def retry_after(self, key: int, now: float) -> float:
        events = self._events.get(key)
        return max(0.0, events[0] + self.per_seconds - now) if events else 0.0
