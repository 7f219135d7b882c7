"""report.html of each real sample, rendered in a real headless Chromium (Debian's
package, installed by `scripts/ensure-chromium.sh` from `make test`), read as an
analyst would: no console errors, no raw JSON key in a heading or row label, no
`None` / `nan` in the text, every chart full width and neither blank nor one colour,
every chart with its caption, and a summary at the top.

Each sample is imported small with `ecom-stream import FORMAT ...` and replayed with
`ecom-stream replay ... --report`, the commands a user runs. Screenshots are kept under
out/test-artifacts/report-browser/ (gitignored); their paths are printed.

Chromium missing or unable to start is a failure under CI=true (the suite must
exercise it there) and a skip with the reason elsewhere. The samples live in
../shared/data; without them the test skips, naming the folder.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ARTEFACTS = ROOT / "out" / "test-artifacts" / "report-browser"
VIEWPORT = {"width": 1400, "height": 900}
# name -> (import format, sources under DATA, --limit): small, so the test stays quick.
SAMPLES: dict[str, tuple[str, list[str], int | None]] = {
    "taobao": ("taobao", ["taobao_userbehavior_sample/UserBehavior.csv"], 4000),
    "yoochoose": ("yoochoose", ["yoochoose_rsc15_100k/yoochoose-clicks-100k_train_full.txt"], 4000),
    "open-bandit": ("open-bandit", ["open_bandit_random/all"], 4000),
    # Olist's --limit counts orders but items are read in file order: the whole (small)
    # sample is needed for orders that have their items.
    "olist": ("olist", ["olist_orders_sample"], None),
    "online-retail": ("online-retail", ["uci_online_retail_sample/OnlineRetail.csv"], 4000),
}
# What a section with nothing to show must say instead (sample -> sentences).
EXPECTED_NOTES = {
    "yoochoose": ["No ad impressions in this input: no click model."],
    "open-bandit": ["Neither the recommender nor popularity hit any of the"],
}
RAW_WORD = re.compile(r"\b(None|nan|NaN|null|inf)\b")


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run here)")
    pytest.skip(reason)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    script = ROOT / "scripts" / "ensure-chromium.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    path = shutil.which("chromium")
    if done.returncode or not path:
        _fail_or_skip(f"chromium is not installed and {script.name} failed: {done.stderr.strip()}")
    assert path is not None
    return path


def _cli(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"ecom-stream {' '.join(args)} failed:\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Import and replay every sample; the report folder of each."""
    if not DATA.exists():
        pytest.skip(f"real-data samples are absent ({DATA} does not exist)")
    base = tmp_path_factory.mktemp("reports")
    out: dict[str, Path] = {}
    for name, (fmt, sources, limit) in SAMPLES.items():
        paths = [str(DATA / s) for s in sources]
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            pytest.skip(f"real-data sample {missing[0]} is absent")
        events = base / f"{name}.jsonl"
        _cli("import", fmt, *paths, "-o", str(events), *(["--limit", str(limit)] if limit else []))
        _cli("replay", str(events), "--report", str(base / name), "--quiet")
        out[name] = base / name
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as e:  # pragma: no cover - a dev dependency
        _fail_or_skip(f"playwright is not installed: {e}")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Error as e:
            _fail_or_skip(f"chromium at {executable} does not start: {e}")
        try:
            yield b
        finally:
            b.close()


def _colours(data: bytes) -> int:
    """Distinct colours in a PNG (up to 256 counted)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        found = im.convert("RGB").getcolors(maxcolors=256)
    return 257 if found is None else len(found)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_report_reads_well_in_a_browser(
    name: str, reports: dict[str, Path], browser: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((reports[name] / "report.html").as_uri())
    page.wait_for_load_state("load")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"report-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    with capsys.disabled():
        print(f"\n  screenshot of {name}'s report.html: {shot}")

    assert errors == [], f"console errors: {errors}"
    text = page.inner_text("body")
    assert not RAW_WORD.findall(text), f"raw values in the text: {RAW_WORD.findall(text)}"
    headings = page.eval_on_selector_all("h1,h2,h3,h4", "els => els.map(e => e.innerText)")
    assert headings[:2] == ["Backtest report", "Summary"], headings[:3]
    assert [h for h in headings if "_" in h] == [], "raw keys in headings"
    labels = page.eval_on_selector_all("th", "els => els.map(e => e.innerText)")
    raw = [t for t in labels if re.fullmatch(r"[a-z0-9@_-]*_[a-z0-9@_-]*", t)]
    assert raw == [], f"raw keys as row labels: {raw}"
    # Numbers are rounded: no fraction with more than 3 significant digits.
    unrounded = re.findall(r"\d\.0*[1-9]\d{3,}", text)
    assert unrounded == [], f"unrounded numbers: {unrounded[:5]}"
    for sentence in EXPECTED_NOTES.get(name, []):
        assert sentence in text

    images = page.eval_on_selector_all(
        "figure",
        """els => els.map(f => {
            const img = f.querySelector('img'), cap = f.querySelector('figcaption');
            return {src: img.src, natural: img.naturalWidth, shown: img.clientWidth,
                    caption: cap ? cap.innerText : ''};
        })""",
    )
    content_width = page.evaluate("document.body.clientWidth")
    for img in images:
        assert img["natural"] >= 1300, f"chart only {img['natural']} px wide"
        assert img["shown"] >= 0.9 * content_width, (img["shown"], content_width)
        assert "better" in img["caption"], f"caption says nothing of better: {img['caption']}"
        data = base64.b64decode(img["src"].split(",", 1)[1])
        assert _colours(data) > 8, "a chart image is blank or nearly one colour"
    if name in ("taobao", "yoochoose", "open-bandit"):
        assert images, "no chart at all"
    page.close()


def test_empty_sections_say_why_instead_of_drawing(reports: dict[str, Path]) -> None:
    """The charts that would be empty are replaced by their sentence (file-level check,
    no browser needed): YOOCHOOSE has no labels to track or calibrate."""
    page = (reports["yoochoose"] / "report.html").read_text(encoding="utf-8")
    assert "No labels were scored in this input" in page
    assert "there is no calibration curve to draw" in page
