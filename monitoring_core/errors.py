"""Errors a user can act on.

Pages and the CLI catch :class:`FairwatchError` and show its message; anything else is a
bug. Validation problems in documents surface as :class:`InvalidInput` (wrapping
pydantic's message so the field is named).
"""

from __future__ import annotations


class FairwatchError(Exception):
    """Base class: the message is written for the person who has to fix it."""


class InvalidInput(FairwatchError, ValueError):
    """A value, row, file or document is malformed; the message says what and where."""


class NotFound(FairwatchError, LookupError):
    """The named object does not exist (a model, a baseline, an incident...)."""


class Forbidden(FairwatchError, PermissionError):
    """The acting user's role does not grant this action."""


class Conflict(FairwatchError):
    """The action clashes with current state: a duplicate id, a run already in progress,
    an illegal status transition."""


class StoreUnavailable(FairwatchError, ConnectionError):
    """The database cannot be reached or written (locked, read-only, unreachable URI)."""


class ConfigError(FairwatchError):
    """A setting has a bad value; the message names the setting and where it came from."""


class StoreDamaged(FairwatchError):
    """Part of the store cannot be read back (a corrupt segment, an audit entry that is not
    valid JSON, a file that is not a Fairwatch database). The message names what is damaged
    and what it affects; data elsewhere in the store stays readable."""
