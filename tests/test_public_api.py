"""The public API is declared once, in ``__all__``, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

import rendezvous

MODULES = [
    "rendezvous",
    "rendezvous.errors",
    "rendezvous.config",
    "rendezvous.bus",
    "rendezvous.archive",
    "rendezvous.models",
    "rendezvous.collector",
    "rendezvous.service",
    "rendezvous.registry",
    "rendezvous.roles",
    "rendezvous.learning",
    "rendezvous.compare",
    "rendezvous.replay",
    "rendezvous.promotion",
    "rendezvous.auto_promotion",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is exported but missing"


def test_the_top_level_names_users_meet() -> None:
    for attr in ("Rendezvous", "Answer", "Model", "AsyncModel", "load_deployment",
                 "RendezvousError", "ConfigError", "InputError", "__version__"):  # fmt: skip
        assert attr in rendezvous.__all__


def test_every_error_derives_from_one_root() -> None:
    from rendezvous import errors

    for attr in errors.__all__:
        obj = getattr(errors, attr)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, errors.RendezvousError), attr
