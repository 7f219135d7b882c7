"""The library versions every workaround in this package was written for and checked
against (tests/test_faust_fixes.py); pyproject.toml pins exactly these.

Each workaround reaches into a private attribute or a behaviour of these releases; on
any other release it may silently do nothing or do harm, so the worker refuses to start
instead. Upgrading: re-read the upstream code named in each module's docstring, keep,
change or drop the workaround, run tests/test_faust_fixes.py, then move the pins here
and in pyproject.toml together."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

WRITTEN_FOR = {
    "faust-streaming": "0.15.3",
    "aiokafka": "0.14.0",
    "mode-streaming": "0.7.1",  # bounded_shutdown.py overrides mode's Worker
}


class UnsupportedVersion(RuntimeError):
    """A library differs from WRITTEN_FOR; str() is the one line to print."""


def installed(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def require_supported() -> None:
    """Raise UnsupportedVersion unless every library is the release written for.

    >>> require_supported()  # the pinned releases are installed
    """
    wrong = {d: installed(d) for d, v in WRITTEN_FOR.items() if installed(d) != v}
    if wrong:
        found = ", ".join(f"{d} {v}" for d, v in wrong.items())
        wanted = ", ".join(f"{d} {WRITTEN_FOR[d]}" for d in wrong)
        raise UnsupportedVersion(
            f"streams/faust_fixes was written for {wanted}, found {found}: review its "
            "workarounds (docs/architecture.md) before changing the pins"
        )
