"""Calling a service's entrypoints in-process as a member of staff would
reach them through the gateway (which sends "user (role)" as the actor)."""
from __future__ import annotations

from nameko.testing.services import entrypoint_hook


def as_staff(container, actor: str | None):
    """``call(method, *args, **kwargs)``; ``actor=None`` calls anonymously."""

    def call(method, *args, **kwargs):
        context = {"actor": actor} if actor else {}
        with entrypoint_hook(container, method, context_data=context) as hook:
            return hook(*args, **kwargs)

    return call
