"""YOOCHOOSE clicks (RecSys 2015, session-rec layout: tab-separated SessionId, ItemId, Time).

Every row is a clickstream `view`. The dataset is anonymous: it has sessions but no
users, so `user_id` is the session id (one pseudo-user per session). Time is unix
seconds as a float, UTC, rounded to the millisecond.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from itertools import islice

from backtest.importers.common import Event, Tally, header_index, open_text, parse_float, ts_ok

COLUMNS = ("SessionId", "ItemId", "Time")
ID_PREFIX = "yc"


def import_yoochoose(
    sources: Sequence[str], tally: Tally, limit: int | None = None
) -> Iterator[Event]:
    """Views from session-rec click files; ids are `yc<file#>-<data row#>`."""
    bad = tally.bad
    for source_no, path in enumerate(sources):
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            if header is None:
                tally.notes["empty_file"] += 1
                continue
            i_session, i_item, i_time = header_index(header, COLUMNS, path)
            width = len(header)
            for row_no, row in enumerate(islice(reader, tally.budget(limit)), 1):
                tally.rows_read += 1
                if len(row) != width:
                    bad["wrong_column_count"] += 1
                    continue
                session, item = row[i_session], row[i_item]
                seconds = parse_float(row[i_time])
                ts = -1 if seconds is None else round(seconds * 1000)
                if not ts_ok(ts):
                    bad["bad_timestamp"] += 1
                elif not session or not item:
                    bad["empty_id"] += 1
                else:
                    yield {
                        "topic": "clickstream", "event_id": f"{ID_PREFIX}{source_no}-{row_no}",
                        "ts": ts, "user_id": session, "session_id": session, "type": "view",
                        "item_id": item,
                    }  # fmt: skip
