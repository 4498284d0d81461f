"""In-memory token buckets, one per key (a client address, a link).

Each process keeps its own buckets: with several replicas of the patient
pages a client may make up to the limit at each of them. That bounds
guessing and hammering well enough for pages whose links are unguessable;
put a shared limiter in front if replicas multiply."""
from __future__ import annotations

import time
from dataclasses import dataclass

# Keys not seen for this long are forgotten, so the table stays small.
IDLE_SECONDS = 600
MAX_KEYS = 50_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, per_minute: float, burst: float | None = None, clock=time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = burst if burst is not None else per_minute
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_KEYS:
                self._forget_idle(now)
            bucket = self.buckets[key] = Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False

    def retry_after(self, key: str) -> int:
        bucket = self.buckets.get(key)
        if bucket is None or bucket.tokens >= 1 or self.rate <= 0:
            return 1
        return max(1, int((1 - bucket.tokens) / self.rate) + 1)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, b in self.buckets.items() if now - b.updated > IDLE_SECONDS]:
            del self.buckets[key]
        if len(self.buckets) >= MAX_KEYS:
            self.buckets.clear()
