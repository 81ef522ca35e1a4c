"""Servers for the remote-model tests: the real-protocol stand-in on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.openai_audio import AudioChatServer, ServerOptions

Serve = Callable[..., tuple[AudioChatServer, str]]


@pytest.fixture()
def serve(qwen2_audio_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """Start servers over the tiny Qwen2-Audio; each returns (server, base URL). Stopped after."""
    for name in ("CUELAB_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    started: list[AudioChatServer] = []

    def start(**options: object) -> tuple[AudioChatServer, str]:
        server = AudioChatServer(qwen2_audio_dir, ServerOptions(**options))  # type: ignore[arg-type]
        started.append(server)
        return server, server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture()
def dead_url() -> str:
    """A /v1 URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
