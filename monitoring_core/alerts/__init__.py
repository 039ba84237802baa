"""Alerts: raising, deduplication and suppression (manager, suppressions); routing and
delivery (routing, outbox, channels, digest).

``drain`` and ``send_digest`` are what the scheduler runs (every minute; daily).
"""

from .digest import send_digest
from .outbox import drain

__all__ = ["drain", "send_digest"]
