"""The sync client is generated from the asyncio one: both offer the same calls, alike."""

from __future__ import annotations

import importlib.util
import inspect
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl import AsyncClient, Client


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name in ("__init__",)
    }


def test_the_two_clients_have_the_same_public_methods() -> None:
    assert sorted(public_methods(Client)) == sorted(public_methods(AsyncClient))
    assert sorted(
        name for name, _ in inspect.getmembers(Client, lambda m: isinstance(m, property))
    ) == sorted(name for name, _ in inspect.getmembers(AsyncClient, lambda m: isinstance(m, property)))


@pytest.mark.parametrize("name", sorted(public_methods(Client)))
def test_each_method_takes_the_same_parameters(name: str) -> None:
    sync = inspect.signature(getattr(Client, name))
    asynchronous = inspect.signature(getattr(AsyncClient, name))
    assert list(sync.parameters.values()) == list(asynchronous.parameters.values())


def sync_twin(hint: Any) -> Any:
    """What the sync client returns for what the async one awaits or iterates asynchronously."""
    if typing.get_origin(hint) is AsyncIterator:
        (item,) = typing.get_args(hint)
        return Iterator[item]  # type: ignore[valid-type]
    if hint is AsyncClient:
        return Client
    return hint


@pytest.mark.parametrize("name", sorted(public_methods(Client)))
def test_each_sync_method_returns_what_its_async_twin_awaits(name: str) -> None:
    sync, asynchronous = getattr(Client, name), getattr(AsyncClient, name)
    sync_hints = typing.get_type_hints(sync)
    async_hints = typing.get_type_hints(asynchronous)
    assert not inspect.iscoroutinefunction(sync)
    is_async_iterator = typing.get_origin(async_hints["return"]) is AsyncIterator
    # Calls are coroutines; watches and history are async iterators, not awaited.
    assert inspect.iscoroutinefunction(asynchronous) or is_async_iterator or name == "__init__"
    assert sync_hints.pop("return") == sync_twin(async_hints.pop("return"))
    assert sync_hints == async_hints


def test_client_py_is_what_the_generator_makes_of_aio_py() -> None:
    """A hand edit of client.py, or aio.py changed without `make generate`, fails here too."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "unasync_client.py"
    spec = importlib.util.spec_from_file_location("unasync_client", script)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.TARGET.read_text() == generator.generate()
