"""Reading event files (JSON Lines, one event per line with its `topic`) merged in
event time, in the order the live worker applies a partition's topics
(`online_models.merge`): what the replay and `ecom-stream produce` feed from. Each line is decoded
with the worker's limits; an invalid one is counted by reason and handed to a callback
(the replay writes it as the worker's dead-letter record)."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import orjson

from backtest.jsonl import iter_lines
from online_models.decode import CAMPAIGNS, EVENT_TYPES, DecodeError, decode_input
from online_models.erasure import ERASURE, decode_request
from online_models.merge import order_key
from online_models.pipeline import Limits
from online_models.promotions.decode import PROMO_TYPES, PROMOTIONS, decode_promotion
from online_models.pseudonyms import Privacy

_PREFIX = b'{"topic":"'


def _topic(line: bytes) -> str:
    """The line's `topic`; DecodeError not_json / missing_topic (replay-only reason)."""
    # Importers and write_events put `topic` first: skip a second JSON parse for it.
    if line.startswith(_PREFIX):
        end = line.find(b'"', len(_PREFIX))
        if end > 0:
            try:
                return line[len(_PREFIX) : end].decode()
            except UnicodeDecodeError:  # counted like any other bad line, not fatal
                raise DecodeError("not_utf8", "input is not valid UTF-8") from None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise DecodeError("not_json", "input is not valid JSON") from None
    topic = obj.get("topic") if isinstance(obj, dict) else None
    if not isinstance(topic, str):
        raise DecodeError("missing_topic", "no string `topic` field")
    return topic


def read_file(
    path: str | Path,
    index: int,
    invalid: Counter[str],
    disorder: Counter[str],
    limits: Limits | None = None,
    refused: Callable[[str, int, bytes, str, str], None] | None = None,
    privacy: Privacy | None = None,
) -> Iterator[tuple[int, int, int, int, str, Any]]:
    """(ts, stream rank, file index, line number, topic, decoded event) of one file's
    valid lines, decoded with the worker's limits, in the worker's order
    (`online_models.merge.order_key`: lines of one time are ordered by stream rank,
    then by line); each invalid line is counted by reason and handed to
    `refused(path, line number, line, reason, detail)` (the replay's dead letters)."""
    lim = limits or Limits()
    last = 0
    run: list[tuple[int, int, int, int, str, Any]] = []  # lines of one event time
    for number, line in enumerate(iter_lines(path)):
        try:
            topic = _topic(line)
            if topic == ERASURE:  # honoured by the replay as by the worker (issue 21)
                ev = decode_request(line)
            elif topic in PROMO_TYPES:  # issue 22: the promotions market's inputs
                ev = decode_promotion(topic, line, lim.max_bytes)
                if privacy is not None and hasattr(ev, "user_id"):
                    ev = msgspec.structs.replace(ev, user_id=privacy.user(ev.user_id))
            elif topic not in EVENT_TYPES:
                raise DecodeError("unknown_topic", f"topic {topic!r} is not an input topic")
            else:
                ev = decode_input(topic, line, lim.max_bytes, lim.max_depth)
            if (
                privacy is not None and topic not in PROMO_TYPES
            ):  # at decode, as the worker's pipeline does
                ev = privacy.event(ev)
        except DecodeError as exc:
            invalid[exc.reason] += 1
            if refused is not None:
                refused(str(path), number, line, exc.reason, f"DecodeError: {exc.detail}")
            continue
        ts = last if topic in (CAMPAIGNS, PROMOTIONS) else ev.ts
        if ts < last:
            disorder[str(path)] += 1  # heapq.merge needs sorted files; counted, not fixed
        if run and ts != run[0][0]:
            yield from sorted(run)  # (ts, rank, index, line) is unique: events not compared
            run.clear()
        last = max(last, ts)
        run.append((ts, order_key(ts, topic)[1], index, number, topic, ev))
    yield from sorted(run)


def merged(
    paths: Sequence[str | Path],
    invalid: Counter[str],
    disorder: Counter[str],
    limits: Limits | None = None,
    refused: Callable[[str, int, bytes, str, str], None] | None = None,
    privacy: Privacy | None = None,
) -> Iterator[tuple[int, int, int, int, str, Any]]:
    """Every file's lines merged in the worker's order: (ts, stream rank, file, line)."""
    return heapq.merge(
        *(read_file(p, i, invalid, disorder, limits, refused, privacy) for i, p in enumerate(paths))
    )
