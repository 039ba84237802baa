"""Opening Fairwatch for the app: the store, and the demo on a first start.

The demo is seeded only into an *empty embedded* store, and only when
``FAIRWATCH_SEED_DEMO`` is true (the default): a MongoDB deployment never gets demo data
by surprise.
"""

from __future__ import annotations

import threading

from .config import Settings

_seed_lock = threading.Lock()


def needs_demo(store, settings: Settings) -> bool:
    return settings.seed_demo and not settings.uses_mongodb and store.is_empty()


def seed_demo_once(store, settings: Settings, progress=None):
    """Seed the demo if it is needed; one thread at a time (several browser sessions may
    open the app at once). Returns the demo report, or None if nothing was done."""
    with _seed_lock:
        if not needs_demo(store, settings):
            return None
        from .demo import seed_demo

        return seed_demo(store, progress=progress)
