"""Split a session click log (session-rec layout: SessionId, ItemId, Time) by time.

The last `test_days` of the log are the test period: a session whose *last* click
falls in it is a test session, every other session is a training session, so no
session is cut in two and no test click is seen in training. As usual for next-item
evaluation, test clicks on items never clicked in training are dropped (no model can
recommend an unseen item) and test sessions left with fewer than two clicks are
dropped (nothing to predict). Both files keep the header and the rows' original
order; `split.json` records the split time and the counts.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rows = ["1\\ta\\t0", "1\\tb\\t60", "2\\ta\\t90000", "2\\tb\\t90060", "2\\tz\\t90100",
...         "3\\ta\\t170000", "3\\tb\\t172800"]
>>> _ = (d / "clicks.txt").write_text("SessionId\\tItemId\\tTime\\n" + "\\n".join(rows) + "\\n")
>>> s = split_sessions(d / "clicks.txt", d / "out")
>>> s.split_ts, s.train_sessions, s.test_sessions, s.test_clicks, s.dropped_unseen_items
(86400000, 1, 2, 4, 1)
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from backtest.importers.common import header_index, open_text, parse_float
from backtest.inputs import NothingValid

DAY_S = 86_400
COLUMNS = ("SessionId", "ItemId", "Time")


@dataclass
class SplitStats:
    source: str
    train: str
    test: str
    split_ts: int  # ms: sessions ending at or after it are test sessions
    train_sessions: int = 0
    train_clicks: int = 0
    test_sessions: int = 0
    test_clicks: int = 0
    dropped_unseen_items: int = 0
    dropped_short_sessions: int = 0
    bad_rows: int = 0


def split_sessions(source: str | Path, out_dir: str | Path, test_days: float = 1.0) -> SplitStats:
    """Write out_dir/train.txt, test.txt and split.json; return the counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open_text(str(source)) as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, [])
        idx = header_index(header, COLUMNS, str(source))
        rows: list[tuple[str, str, float, list[str]]] = []
        bad = 0
        for row in reader:
            t = parse_float(row[idx[2]]) if len(row) == len(header) else None
            if t is None:
                bad += 1
                continue
            rows.append((row[idx[0]], row[idx[1]], t, row))
    if not rows:
        raise NothingValid(f"{source}: no valid clicks ({bad:,} bad rows)")
    last: dict[str, float] = defaultdict(float)
    for session, _, t, _ in rows:
        last[session] = max(last[session], t)
    t_max = max(last.values())
    split_s = t_max - test_days * DAY_S  # as session-rec's time split does
    train = [r for r in rows if last[r[0]] < split_s]
    seen = {item for _, item, _, _ in train}
    test_all = [r for r in rows if last[r[0]] >= split_s]
    test_known = [r for r in test_all if r[1] in seen]
    length: dict[str, int] = defaultdict(int)
    for session, _, _, _ in test_known:
        length[session] += 1
    test = [r for r in test_known if length[r[0]] >= 2]
    stats = SplitStats(
        source=str(source),
        train=str(out / "train.txt"),
        test=str(out / "test.txt"),
        split_ts=round(split_s * 1000),
        train_sessions=len({r[0] for r in train}),
        train_clicks=len(train),
        test_sessions=len({r[0] for r in test}),
        test_clicks=len(test),
        dropped_unseen_items=len(test_all) - len(test_known),
        dropped_short_sessions=len({r[0] for r in test_known}) - len({r[0] for r in test}),
        bad_rows=bad,
    )
    for path, part in ((stats.train, train), (stats.test, test)):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(header)
            writer.writerows(r[3] for r in part)
    (out / "split.json").write_bytes(orjson.dumps(asdict(stats), option=orjson.OPT_INDENT_2))
    return stats
