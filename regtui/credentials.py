"""Credentials as a runtime would pick them, carried with their provenance and never printed."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Credential"]


@dataclass(frozen=True)
class Credential:
    """A username and secret for one registry host, and where they came from.

    ``repr``/``str`` never show the secret; reports use :attr:`source` only.
    """

    username: str
    secret: str = field(repr=False)
    """Password, or the identity token when :attr:`kind` is ``identitytoken``."""
    source: str
    """Where it was found: ``path:line (key)`` or ``credential helper docker-credential-pass``."""
    kind: str = "basic"
    """``basic`` (username/password), ``identitytoken`` (OAuth2 refresh token) or ``registrytoken`` (bearer)."""

    def __str__(self) -> str:
        return f"{self.kind} credentials for {self.username or '<token>'} from {self.source}"
