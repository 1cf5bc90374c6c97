"""The pods' check whether the engine hung up: asked of the kernel at most every ``HANGUP_CHECK_SECONDS``."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime import filetransport

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    engine, pod = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with engine, pod:
        yield engine, pod


def test_a_half_close_is_seen_at_the_first_check_after_the_interval(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, pod = pair
    monkeypatch.setattr(filetransport, "HANGUP_CHECK_SECONDS", 3600.0)
    engine_gone = filetransport._hangup_watch(pod)
    assert engine_gone() is False  # the first check asks: the engine still waits
    engine.shutdown(socket.SHUT_WR)
    assert engine_gone() is False  # within the interval nothing is asked
    monkeypatch.setattr(filetransport, "HANGUP_CHECK_SECONDS", 0.0)
    assert engine_gone() is True


def test_a_closed_connection_is_seen_at_the_first_check(pair: tuple[socket.socket, socket.socket]) -> None:
    engine, pod = pair
    engine_gone = filetransport._hangup_watch(pod)
    engine.close()
    assert engine_gone() is True
