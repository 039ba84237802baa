"""The demo goes into a store only where it belongs, and the CLI and the app seed the same one."""

from __future__ import annotations

import inspect

from monitoring_core.cli import build_parser
from monitoring_core.config import Settings
from monitoring_core.demo import DEFAULT_SEED
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.thresholds import MonitoringConfig
from monitoring_core.seeding import needs_demo, seed_demo
from monitoring_core.storage.sqlite import SqliteStore


def test_the_cli_and_the_app_seed_the_same_demo():
    cli_seed = build_parser().parse_args(["seed-demo"]).seed
    app_seed = inspect.signature(seed_demo).parameters["seed"].default
    assert cli_seed == app_seed == DEFAULT_SEED


def test_the_demo_goes_only_into_an_empty_embedded_store(tmp_path):
    store = SqliteStore(tmp_path / "fairwatch.db")
    store.ensure_schema()
    embedded = Settings(data_dir=tmp_path)
    assert needs_demo(store, embedded)
    assert not needs_demo(store, Settings(data_dir=tmp_path, seed_demo=False))
    assert not needs_demo(store, Settings(data_dir=tmp_path, backend="mongodb", MONGODB_URI="mongodb://db:27017"))
    store.models.upsert(RegisteredModel(model_id="credit", monitoring=MonitoringConfig(
        risk_level="low", positive_label="approve", protected_attributes=["gender"])))
    assert not needs_demo(store, embedded)
    store.close()


def test_demo_users_come_with_the_demo_and_never_outside_demo_mode(tmp_path, monkeypatch):
    from monitoring_core import seeding

    monkeypatch.setattr(seeding, "seed_demo", lambda store, progress=None: "seeded")  # the data is tested elsewhere
    production = SqliteStore(tmp_path / "prod.db")
    production.ensure_schema()
    assert seeding.seed_demo_once(production, Settings(data_dir=tmp_path, seed_demo=False)) is None
    assert production.users.list() == []
    demo = SqliteStore(tmp_path / "demo.db")
    demo.ensure_schema()
    assert seeding.seed_demo_once(demo, Settings(data_dir=tmp_path)) == "seeded"
    assert sorted(u.username for u in demo.users.list()) == ["admin", "auditor", "compliance", "engineer", "viewer"]
    production.close()
    demo.close()
