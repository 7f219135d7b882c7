"""User errors of the file commands: one line on stderr, a non-zero exit, no traceback.

Inputs that cannot be read (not gzip, truncated gzip, not UTF-8, a directory, a file
where a folder is wanted) exit 2; inputs read but holding nothing valid exit 1;
invalid lines inside an otherwise valid file are counted, not fatal.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from backtest.importers import IMPORTERS
from ecom_cli.main import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    good = d / "good.jsonl.gz"
    args = ["truth-stream", "-o", str(good), "--truth", str(d / "t.json"), "--users", "20"]
    assert main([*args, "--days", "1"]) == 0
    paths = {
        "good": good,
        "empty": d / "empty.jsonl",
        "csv": d / "raw.csv",
        "invalid": d / "invalid.jsonl",
        "truncated": d / "truncated.jsonl.gz",
        "not_gzip": d / "not-gzip.jsonl.gz",
        "binary": d / "binary.csv",
        "folder": d / "folder",
        "file": d / "a-file",
        "missing": d / "missing.jsonl",
        "bad_utf8": d / "bad-utf8.jsonl",
        "truncated_tsv": d / "clicks.tsv.gz",
    }
    paths["empty"].write_bytes(b"")
    paths["csv"].write_text("user,item,ts\n1,2,3\n")
    paths["invalid"].write_text('nope\n{"x": 1}\n{"topic": "clickstream"}\n')
    paths["truncated"].write_bytes(good.read_bytes()[:300])
    paths["not_gzip"].write_text("plain text\n")
    paths["binary"].write_bytes(bytes(range(128, 256)) * 40)
    rows = "".join(f"{i // 5}\t{i % 97}\t{1_400_000_000 + i}\n" for i in range(20_000))
    whole = gzip.compress(("SessionId\tItemId\tTime\n" + rows).encode())
    paths["truncated_tsv"].write_bytes(whole[: len(whole) // 2])
    paths["folder"].mkdir()
    paths["file"].write_text("x")
    paths["bad_utf8"].write_bytes(
        b'{"topic":"click\xffstream","ts":1}\n{"topic":"clickstream","user_id":"\xfe"}\n'
    )
    return paths


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("empty", 1, "no valid events"),
        ("csv", 1, "not_json"),
        ("invalid", 1, "3 invalid lines"),
        ("bad_utf8", 1, "not_utf8"),
        ("truncated", 2, "truncated or corrupt gzip"),
        ("not_gzip", 2, "not gzip-compressed"),
        ("folder", 2, "is a directory"),
        ("missing", 2, "no such file"),
    ],
)
def test_replay_of_unusable_input_is_one_line(files, tmp_path, capsys, name, code, says) -> None:
    argv = ["replay", str(files[name]), "--report", str(tmp_path / "r"), "--quiet", "--no-html"]
    got, err = _run(argv, capsys)
    assert got == code and len(err) == 1 and says in err[0], err
    assert err[0].startswith("ecom-stream replay: ")


def test_replay_report_must_be_a_folder(files, capsys) -> None:
    got, err = _run(["replay", str(files["good"]), "--report", str(files["file"])], capsys)
    assert got == 2 and len(err) == 1 and "is not a folder" in err[0], err


def test_invalid_lines_in_a_valid_file_are_counted(files, tmp_path, capsys) -> None:
    out = tmp_path / "r"
    argv = ["replay", str(files["good"]), str(files["bad_utf8"]), str(files["invalid"])]
    assert main([*argv, "--report", str(out), "--quiet", "--no-html"]) == 0
    line = capsys.readouterr().out.strip()
    invalid = orjson.loads((out / "report.json").read_bytes())["counts"]["invalid_by_reason"]
    assert invalid["not_utf8"] == 1 and sum(invalid.values()) == 5, invalid
    # The final line states the headline figures in words, not a raw dict.
    assert line.startswith("replayed ") and "recommendations" in line and "{" not in line
    assert "5 invalid lines" in line


FILE_FORMATS = ["online-retail", "taobao", "yoochoose"]  # olist, open-bandit read folders


@pytest.mark.parametrize("fmt", sorted(IMPORTERS))
@pytest.mark.parametrize("name", ["binary", "truncated", "not_gzip", "folder", "missing", "empty"])
def test_import_of_unusable_input_is_one_line(files, tmp_path, capsys, fmt, name) -> None:
    got, err = _run(["import", fmt, str(files[name]), "-o", str(tmp_path / "o.jsonl")], capsys)
    assert got in (1, 2) and len(err) == 1, err
    assert err[0].startswith("ecom-stream import: ")
    if fmt in FILE_FORMATS and name in ("binary", "truncated", "not_gzip"):
        assert got == 2 and ("UTF-8" in err[0] or "gzip" in err[0] or "column" in err[0]), err
    assert not (tmp_path / "o.jsonl").exists() or got == 0


def test_import_of_a_binary_file_names_the_encoding(files, tmp_path, capsys) -> None:
    argv = ["import", "online-retail", str(files["binary"]), "-o", str(tmp_path / "o.jsonl")]
    got, err = _run(argv, capsys)
    assert got == 2 and err == [f"ecom-stream import: {files['binary']}: not UTF-8 text "
                                "(invalid start byte)"]  # fmt: skip


@pytest.mark.parametrize("output", ["folder", "under_file"])
def test_import_output_must_be_writable_as_a_file(files, capsys, output) -> None:
    target = files["folder"] if output == "folder" else files["file"] / "o.jsonl"
    got, err = _run(["import", "taobao", str(files["csv"]), "-o", str(target)], capsys)
    assert got == 2 and len(err) == 1 and str(files["folder"] if output == "folder" else
                                               files["file"]) in err[0], err  # fmt: skip


@pytest.mark.parametrize(
    ("name", "says"),
    [("folder", "is a directory"), ("missing", "no such file"), ("not_gzip", "not gzip")],
)
def test_produce_checks_its_files_before_the_broker(files, monkeypatch, capsys, name, says) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    got, err = _run(["produce", str(files[name])], capsys)
    assert got == 2 and len(err) == 1 and says in err[0] and "Kafka" not in err[0], err


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("empty", 2, "missing column"),
        ("binary", 2, "UTF-8"),
        ("truncated_tsv", 2, "truncated or corrupt gzip"),
        ("folder", 2, "is a directory"),
        ("missing", 2, "no such file"),
    ],
)
def test_split_sessions_of_unusable_input(files, tmp_path, capsys, name, code, says) -> None:
    got, err = _run(["split-sessions", str(files[name]), "--out", str(tmp_path / "s")], capsys)
    assert got == code and len(err) == 1 and says in err[0], err


def test_split_sessions_of_a_log_without_valid_clicks_exits_1(files, tmp_path, capsys) -> None:
    log = tmp_path / "clicks.tsv"
    log.write_text("SessionId\tItemId\tTime\n1\t2\tnot-a-time\n")
    got, err = _run(["split-sessions", str(log), "--out", str(tmp_path / "s")], capsys)
    assert got == 1 and len(err) == 1 and "no valid clicks" in err[0], err
    got, err = _run(["split-sessions", str(log), "--out", str(files["file"])], capsys)
    assert got == 2 and len(err) == 1 and "not a folder" in err[0], err


def test_truth_stream_and_schemas_refuse_unusable_outputs(files, capsys) -> None:
    argv = ["truth-stream", "-o", str(files["folder"]), "--truth", str(files["file"]) + ".json"]
    got, err = _run(argv, capsys)
    assert got == 2 and len(err) == 1 and "is a directory" in err[0], err
    got, err = _run(["schemas", "--out", str(files["file"])], capsys)
    assert got == 2 and len(err) == 1 and "not a folder" in err[0], err


def test_the_truncated_fixture_really_is_truncated(files) -> None:
    with pytest.raises(EOFError), gzip.open(files["truncated"]) as f:
        f.read()
