"""Progress of long work: a tqdm bar over the input bytes, only on a terminal."""

from __future__ import annotations

import io

from backtest.jsonl import iter_lines, write_events
from backtest.progress import Progress, progress_enabled
from backtest.replay import ReplayOptions, replay
from backtest.synthetic import generate


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_percentage_and_throughput_from_the_bytes_read(tmp_path) -> None:
    path = tmp_path / "e.jsonl.gz"
    write_events(path, ({"topic": "clickstream", "n": i, "pad": "x" * 50} for i in range(20_000)))
    screen = Terminal()
    with Progress("replay", [path], progress_enabled(screen, quiet=False), stream=screen) as bar:
        n = sum(1 for _ in iter_lines(path))
        bar.update(n, ts=1_396_594_860_000)
    text = screen.getvalue()
    assert n == 20_000 and "replay: 100%" in text
    assert "20,000 events" in text and "/s" in text and "2014-04-04 07:01" in text


def test_no_bar_off_a_terminal_or_when_quiet() -> None:
    assert not progress_enabled(io.StringIO(), quiet=False)
    assert not progress_enabled(Terminal(), quiet=True)
    screen = io.StringIO()
    with Progress("import", [], enabled=False, stream=screen) as bar:
        bar.update(10)
    assert screen.getvalue() == ""


def test_a_replay_with_progress_ends_its_bar_at_100_percent(tmp_path, capsys) -> None:
    events = [{"topic": t, **e} for t, e in generate(n_users=30, duration_s=3600, seed=3)]
    path = tmp_path / "in.jsonl"
    write_events(path, events)
    replay([path], tmp_path / "out", ReplayOptions(progress=True))
    err = capsys.readouterr().err
    assert "replay: 100%" in err and " events, " in err and "/s at " in err
