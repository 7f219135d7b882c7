"""Malformed web requests: 400 for the client, at most one log line a minute for us.

A real aiohttp server (the one Faust's web driver runs) is sent raw bad request lines
over a socket; the filter's clock is a fake, so nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from streams.broker import free_port
from streams.web_log import SERVER_LOGGER, WINDOW_S, install_web_log_filter

LONG_LINE = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
NON_ASCII = b"GET /\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\n\r\n"


async def _send(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return status


async def _serve_and_send(port: int, requests: list[bytes]) -> list[bytes]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app, access_log=None)  # as faust/web/drivers/aiohttp.py
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return [await _send(port, raw) for raw in requests]
    finally:
        await runner.cleanup()


@pytest.fixture()
def clock():
    t = [1000.0]
    logger = logging.getLogger(SERVER_LOGGER)
    saved = list(logger.filters)
    logger.filters.clear()
    installed = install_web_log_filter(now=lambda: t[0])
    assert install_web_log_filter() is installed  # one filter, however often installed
    yield t
    logger.filters[:] = saved


def test_malformed_requests_answer_400_and_log_one_line_a_minute(clock, caplog) -> None:
    port = free_port()
    with caplog.at_level(logging.DEBUG, logger=SERVER_LOGGER):
        statuses = asyncio.run(_serve_and_send(port, [LONG_LINE, NON_ASCII] * 5))
    assert all(s.split()[1:2] == [b"400"] for s in statuses), statuses
    lines = [r for r in caplog.records if r.name == SERVER_LOGGER]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    (line,) = lines
    assert line.exc_info is None and "\n" not in line.getMessage()
    assert "malformed web request" in line.getMessage() and "400" in line.getMessage()
    assert "Traceback" not in caplog.text

    caplog.clear()
    clock[0] += WINDOW_S  # a minute later the next one is logged, with the count
    with caplog.at_level(logging.DEBUG, logger=SERVER_LOGGER):
        asyncio.run(_serve_and_send(port, [NON_ASCII, NON_ASCII]))
    messages = [r.getMessage() for r in caplog.records if r.name == SERVER_LOGGER]
    assert len(messages) == 1 and "(9 suppressed since the last)" in messages[0], messages


def test_other_server_errors_still_log_their_traceback(clock, caplog) -> None:
    logger = logging.getLogger(SERVER_LOGGER)
    with caplog.at_level(logging.ERROR, logger=SERVER_LOGGER):
        for _ in range(3):
            try:
                raise RuntimeError("handler bug")
            except RuntimeError:
                logger.exception("Error handling request from %s", "127.0.0.1")
    assert len(caplog.records) == 3 and all(r.exc_info for r in caplog.records)


def test_without_the_filter_aiohttp_logs_a_traceback_per_request(caplog) -> None:
    """What the filter is for: the same requests, unfiltered, flood the log."""
    logger = logging.getLogger(SERVER_LOGGER)
    saved = list(logger.filters)
    logger.filters.clear()
    try:
        with caplog.at_level(logging.DEBUG, logger=SERVER_LOGGER):
            asyncio.run(_serve_and_send(free_port(), [LONG_LINE, NON_ASCII] * 2))
    finally:
        logger.filters[:] = saved
    records = [r for r in caplog.records if r.name == SERVER_LOGGER]
    assert len(records) == 4 and all(r.exc_info and r.levelno == logging.ERROR for r in records)
