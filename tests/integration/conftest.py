"""Fixtures the integration tests share: a real SMTP server to send to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stolive.broker import free_port
from tests.support import SmtpSink, start_smtp_sink


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """An aiosmtpd server on a free loopback port, and that port."""
    port = free_port()
    sink, controller = start_smtp_sink(port)
    yield sink, port
    controller.stop()
