"""Offline replay: deterministic outputs and report, live parity, report schema, CLI."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from backtest.cli import add_backtest_parsers
from backtest.event_files import merged
from backtest.jsonl import write_events
from backtest.progress import progress_enabled
from backtest.replay import ReplayOptions, replay
from backtest.report import SCHEMA, schema_errors
from backtest.synthetic import campaigns, generate
from online_models.config import EngineConfig
from online_models.runner import Runner

TAOBAO = (
    Path(__file__).resolve().parents[2]
    / "shared/data/taobao_userbehavior_sample"
    / ("UserBehavior.csv")
)
BAD_LINES = [
    b"not json",
    b'{"topic":"nope","ts":1700000000000}',
    b'{"ts":1700000000000,"user_id":"u"}',
    b'{"topic":"clickstream","event_id":"x","ts":1700000000000,"user_id":"u","type":"teleport"}',
    b'{"topic":"orders","order_id":"o","ts":1700000000000,"user_id":"u","items":[]}',
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("inputs")
    camp = root / "campaigns.jsonl"
    write_events(camp, [{"topic": "campaigns", **c} for c in campaigns(3)])
    events = root / "events.jsonl.gz"
    write_events(
        events, ({"topic": t, **e} for t, e in generate(n_users=80, duration_s=7200, seed=5))
    )
    bad = root / "bad.jsonl"
    bad.write_bytes(b"\n".join(BAD_LINES) + b"\n")
    return [camp, events, bad]


@pytest.fixture(scope="module")
def runs(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    outs = [tmp_path_factory.mktemp(f"run{i}") for i in range(2)]
    for out in outs:
        replay(inputs, out, ReplayOptions(bucket_ms=1_800_000))
    return outs


def _minus_performance(path: Path) -> dict[str, Any]:
    report = orjson.loads(path.read_bytes())
    report.pop("performance")
    return dict(report)


def test_two_replays_are_byte_identical(runs: list[Path]) -> None:
    a, b = ((r / "outputs.jsonl.gz").read_bytes() for r in runs)
    assert a == b and len(gzip.decompress(a)) > 0
    assert _minus_performance(runs[0] / "report.json") == _minus_performance(
        runs[1] / "report.json"
    )


def test_report_schema_and_types(runs: list[Path]) -> None:
    report = orjson.loads((runs[0] / "report.json").read_bytes())
    assert schema_errors(report) == [] and set(SCHEMA) <= set(report)
    counts = report["counts"]
    assert set(counts["events_by_topic"]) == {
        "ad-impressions",
        "campaigns",
        "clickstream",
        "orders",
    }
    assert set(counts["outputs_by_topic"]) == {"bid-adjustments", "recommendations"}
    for model in ("click", "conversion"):
        assert isinstance(report["models"][model]["n"], int)
        assert isinstance(report["models"][model]["calibration_curve"], list)
    assert report["models"]["by_time"] and all(
        {"start_ms", "end_ms", "click", "click_cumulative"} <= set(b)
        for b in report["models"]["by_time"]
    )
    recs = report["recommendations"]
    for who in ("model", "baseline"):
        assert set(recs[who]) == {"hit@10", "mrr@10", "hit@20", "mrr@20"}
    assert recs["model"]["hit@10"] > recs["baseline"]["hit@10"]  # co-visitation is learnable
    bidding = report["bidding"]
    assert bidding["impressions"] == counts["events_by_topic"]["ad-impressions"]
    for who in ("policy", "baseline"):
        assert {"won", "spend", "clicks", "conversions", "revenue", "roas", "campaigns"} <= set(
            bidding[who]
        )
    perf = report["performance"]
    assert perf["events_per_second"] > 0 and perf["peak_memory_mb"] > 0


def test_invalid_lines_are_counted_by_reason(runs: list[Path]) -> None:
    report = orjson.loads((runs[0] / "report.json").read_bytes())
    # An empty placed order is rejected by the event's own check (invalid_value),
    # exactly as the live decoder rejects it.
    assert report["counts"]["invalid_by_reason"] == {
        "invalid_value": 1,
        "missing_topic": 1,
        "not_json": 1,
        "unknown_topic": 1,
        "unknown_type": 1,
    }


def test_invalid_lines_are_written_as_dead_letters(runs: list[Path]) -> None:
    """Each invalid line becomes the worker's dead-letter record (one encoder for both):
    its original bytes, where it came from (file, line) and why."""
    import msgspec

    from online_models.outputs import DeadLetter

    for run in runs:
        raw = gzip.decompress((run / "dead-letters.jsonl.gz").read_bytes())
        letters = [msgspec.json.decode(line, type=DeadLetter) for line in raw.splitlines()]
        assert [d.payload.encode() for d in letters] == BAD_LINES
        assert [d.source_offset for d in letters] == list(range(len(BAD_LINES)))
        assert {d.source_topic for d in letters} == {str(Path(letters[0].source_topic))}
        assert letters[0].source_topic.endswith("bad.jsonl")
        assert sorted(d.reason for d in letters) == sorted(
            orjson.loads((run / "report.json").read_bytes())["counts"]["invalid_by_reason"]
        )
    # Deterministic like the outputs: two replays write the same bytes.
    assert len({(r / "dead-letters.jsonl.gz").read_bytes() for r in runs}) == 1


def test_outputs_equal_a_plain_runner_with_the_default_top_k(
    inputs: list[Path], tmp_path: Path
) -> None:
    # Parity: the replay runs top_k=20 for the @20 metrics but must write exactly
    # what the live engine (top_k=10) sends, encoded as the live codec does. Charged
    # the logged costs (`closed_loop=False`), as the plain runner is: in its closed
    # loop the replay charges only the impressions the simulated policy won.
    from online_models.outputs import encode_output

    replay(inputs, tmp_path, ReplayOptions(bucket_ms=1_800_000, closed_loop=False))

    runner = Runner(EngineConfig(partitions=4))
    expected = []
    for _, _, _, _, topic, ev in merged(inputs, Counter(), Counter()):
        if topic == "campaigns":
            runner.set_campaign(ev)
            continue
        expected += [encode_output(o) for o in runner.feed(topic, ev).outputs]
    written = gzip.decompress((tmp_path / "outputs.jsonl.gz").read_bytes()).splitlines()
    assert written == expected


def test_progress_bar_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not progress_enabled(io.StringIO(), quiet=False)
    assert progress_enabled(Tty(), quiet=False)
    assert not progress_enabled(Tty(), quiet=True)


def test_cli_replay_writes_report_html_and_no_progress_when_piped(
    inputs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_backtest_parsers(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = parser.parse_args(["replay", *map(str, inputs), "--report", str(out), "--limit", "3000"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "replayed" in captured.out
    assert orjson.loads((out / "report.json").read_bytes())["settings"]["limit"] == 3000
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_replay_of_an_imported_taobao_sample(tmp_path: Path) -> None:
    if not TAOBAO.is_file():
        pytest.skip(f"Taobao sample not found at {TAOBAO} (see ../shared/data/README.md)")
    from backtest.importers import run_import

    stats = run_import("taobao", [str(TAOBAO)], str(tmp_path / "tb.jsonl.gz"), limit=5000)
    report = replay([tmp_path / "tb.jsonl.gz"], tmp_path / "out")
    assert report["counts"]["events_by_topic"] == stats.events_by_topic
    assert report["counts"]["invalid_by_reason"] == {}
    assert report["recommendations"]["evaluated"] > 0
    assert report["bidding"]["impressions"] == 0 and report["bidding"]["policy"] is None


def test_replay_honours_the_workers_domain_settings(
    inputs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """`ecom-stream replay` reads ECOM_DOMAIN_* like the worker (one reader for both),
    says so in its help, and --knowledge-delay-ms overrides the variable."""
    from ecom_cli.main import main

    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    assert "ECOM_DOMAIN_" in capsys.readouterr().out.replace("\n", " ")
    monkeypatch.setenv("ECOM_DOMAIN_TOP_K", "3")
    monkeypatch.setenv("ECOM_DOMAIN_KNOWLEDGE_DELAY_MS", "60000")
    out = tmp_path / "r"
    args = ["replay", *map(str, inputs), "--report", str(out), "--quiet", "--no-html"]
    assert main([*args, "--limit", "3000"]) == 0
    report = orjson.loads((out / "report.json").read_bytes())
    settings = report["settings"]
    assert (settings["top_k"], settings["knowledge_delay_ms"]) == (3, 60000)
    assert settings["domain_overrides"] == {"knowledge_delay_ms": 60000.0, "top_k": 3.0}
    with gzip.open(out / "outputs.jsonl.gz") as f:
        recs = [o for o in map(orjson.loads, f) if "items" in o]
    assert recs and max(len(o["items"]) for o in recs) == 3
    assert main([*args, "--limit", "3000", "--knowledge-delay-ms", "0"]) == 0
    assert orjson.loads((out / "report.json").read_bytes())["settings"]["knowledge_delay_ms"] == 0
