"""Label joining in event time: impression -> click -> order.

The click and conversion models learn only from these labels, so a lost or mistimed
label is silent model damage. Windows must close on the watermark (max event time
minus allowed lateness), never on a wall clock or an event count, so that a replay
produces exactly the labels the live worker produced.
"""

from __future__ import annotations

from typing import Any

import orjson

from online_models.attribution import Attribution, Label

CLICK_W, CONV_W, LATE = 100, 1000, 10
X = {"bias": 1.0}


def attribution(**over: Any) -> Attribution:
    kw: dict[str, Any] = {
        "click_window": CLICK_W,
        "conversion_window": CONV_W,
        "lateness": LATE,
        **over,
    }
    return Attribution(**kw)


def imp(
    a: Attribution, impression_id: str, ts: int, user: str = "u", campaign: str = "c1"
) -> list[Label]:
    a.observe(ts)
    return a.add_impression(impression_id, user, campaign, ts=ts, x=X, cost=0.5)


def clk(a: Attribution, impression_id: str, ts: int, user: str = "u") -> list[Label]:
    a.observe(ts)
    return a.click(user, impression_id, ts)


def buy(a: Attribution, ts: int, revenue: float, user: str = "u") -> list[Label]:
    a.observe(ts)
    return a.order(user, ts, revenue)


def tick(a: Attribution, ts: int) -> list[Label]:
    """Another event (any user) at `ts` moves the watermark; close what it passed."""
    a.observe(ts)
    return a.expire()


def s(labels: list[Label]) -> list[tuple[str, bool, str, int, float]]:
    return [(lb.kind, lb.y, lb.impression_id, lb.ts, lb.revenue) for lb in labels]


# Click labels ----------------------------------------------------------------------


def test_click_inside_window_is_positive_when_window_closes() -> None:
    """A click 50 ms after its impression yields nothing at click time; the positive
    label comes when the watermark passes the window end (0 + 100), i.e. at max ts 111
    (watermark 101), not at 110 (watermark 100 == due: not yet passed). Positives and
    negatives thus arrive after the same delay and the young model is not biased up."""
    a = attribution()
    assert imp(a, "i1", 0) == []
    assert clk(a, "i1", 50) == []
    assert tick(a, 110) == []
    assert a.watermark == 100
    labels = tick(a, 111)
    assert s(labels) == [("click", True, "i1", 100, 0.0)]
    assert labels[0].x == X and labels[0].campaign_id == "c1" and labels[0].user_id == "u"
    assert a.impressions == {}


def test_click_on_the_window_edge_counts_after_it_does_not() -> None:
    """A click exactly click_window after the impression is inside (<=); one ms later
    is outside, so the impression closes as a negative."""
    a = attribution()
    imp(a, "edge", 0)
    imp(a, "late", 0)
    clk(a, "edge", CLICK_W)
    clk(a, "late", CLICK_W + 1)
    assert sorted(s(tick(a, 200))) == [
        ("click", False, "late", 100, 0.0),
        ("click", True, "edge", 100, 0.0),
    ]


def test_click_by_another_user_or_twice_does_not_count() -> None:
    """Only the impressed user's click counts, and only once: a second click neither
    duplicates the label nor opens a second conversion window."""
    a = attribution()
    imp(a, "i1", 0, user="u")
    clk(a, "i1", 10, user="intruder")
    assert s(tick(a, 200)) == [("click", False, "i1", 100, 0.0)]
    b = attribution()
    imp(b, "i1", 0)
    clk(b, "i1", 10)
    clk(b, "i1", 20)
    assert s(tick(b, 200)) == [("click", True, "i1", 100, 0.0)]
    assert len(b.clicks["u"]) == 1


def test_watermark_is_max_ts_minus_lateness_and_late_events_do_not_move_it() -> None:
    """watermark = max event time - allowed lateness; an older (late) event leaves it
    where it is, so late events never close windows early."""
    a = attribution()
    a.observe(500)
    a.observe(200)
    assert a.watermark == 490
    b = attribution()
    imp(b, "i1", 1000)
    for ts in range(0, 1000, 7):  # a burst of late events from other users
        assert tick(b, ts) == []
    assert b.watermark == 990 and "i1" in b.impressions


def test_windows_close_only_on_watermark_never_by_count() -> None:
    """Thousands of impressions and expire() calls at the same event time close
    nothing: there is no count- or wall-clock-based flush."""
    a = attribution(max_pending=10_000)
    for k in range(2000):
        imp(a, f"i{k}", 0)
        assert a.expire() == []
    assert tick(a, CLICK_W + LATE) == []
    assert len(a.impressions) == 2000
    closed = tick(a, CLICK_W + LATE + 1)
    assert len(closed) == 2000 and not any(lb.y for lb in closed)
    assert a.impressions == {}


def test_click_before_its_impression_still_positive() -> None:
    """Cross-topic skew: the ad_click is read before its impression. The click is held
    (within lateness) and the impression, arriving next, is labelled positive."""
    a = attribution()
    assert clk(a, "i1", 50) == []
    assert a.early_clicks == {"i1": 50}
    assert imp(a, "i1", 45) == []
    assert a.early_clicks == {}
    assert s(tick(a, 200)) == [("click", True, "i1", 145, 0.0)]
    # The click also opened a conversion window at the click's own time.
    assert [c.ts for c in a.clicks["u"]] == [50]


def test_early_click_is_dropped_once_lateness_has_passed() -> None:
    """A held click whose impression never comes is forgotten once the watermark passes
    click ts + lateness (bounded memory); an impression arriving later is a negative."""
    a = attribution()
    clk(a, "i1", 50)
    tick(a, 71)  # watermark 61 > 50 + 10
    assert a.early_clicks == {}
    imp(a, "i1", 45)
    assert s(tick(a, 500)) == [("click", False, "i1", 145, 0.0)]


def test_click_already_behind_watermark_without_impression_is_counted_late() -> None:
    """A click older than the watermark whose impression is unknown cannot be joined
    any more; it is counted in counters['late_clicks'] rather than held."""
    a = attribution()
    a.observe(1000)
    assert clk(a, "ghost", 500) == []
    assert a.early_clicks == {} and a.counters["late_clicks"] == 1


# Conversion labels -----------------------------------------------------------------


def test_conversion_is_last_touch_with_revenue() -> None:
    """Two clicks then an order: once the watermark passes the order, the conversion is
    credited (`converted`) to the later click (last touch) with the order's revenue and
    time; the earlier click stays open, and each click's final `conversion` label comes
    when its own window closes."""
    a = attribution()
    imp(a, "i1", 0)
    imp(a, "i2", 10)
    clk(a, "i1", 20)
    clk(a, "i2", 30)
    assert buy(a, 500, 80.0) == []  # held: a click read late could still be the last touch
    labels = [lb for lb in tick(a, 511) if lb.kind.startswith("conv")]  # watermark 501 > 500
    assert s(labels) == [("converted", True, "i2", 500, 80.0)]
    assert [(c.impression_id, c.converted) for c in a.clicks["u"]] == [("i1", False), ("i2", True)]
    assert s(tick(a, 1035)) == [("conversion", False, "i1", 1020, 0.0)]
    assert s(tick(a, 1041)) == [("conversion", True, "i2", 1030, 0.0)]
    assert a.clicks == {}


def test_a_click_converts_once() -> None:
    """A second order inside the window goes to an earlier, unconverted click (or to
    none): one click is one conversion."""
    a = attribution()
    imp(a, "i1", 0)
    clk(a, "i1", 20)
    buy(a, 300, 10.0)
    buy(a, 400, 20.0)
    labels = tick(a, 2000)
    assert [lb.kind for lb in labels].count("converted") == 1
    assert ("conversion", True, "i1", 1020, 0.0) in s(labels)


def test_order_outside_conversion_window_is_not_attributed() -> None:
    """An order after the conversion window of every click is not a conversion."""
    a = attribution()
    imp(a, "i1", 0)
    clk(a, "i1", 20)
    assert buy(a, 20 + CONV_W + 1, 10.0) == []
    assert [lb for lb in tick(a, 5000) if lb.kind == "conversion" and lb.y] == []


def test_conversion_window_close_is_negative() -> None:
    """A click without an order inside its window becomes a negative conversion label
    at click ts + conversion window, once the watermark passes that time."""
    a = attribution()
    imp(a, "i1", 0)
    clk(a, "i1", 20)
    assert s(tick(a, 1030)) == [("click", True, "i1", 100, 0.0)]  # watermark 1020 == due
    assert s(tick(a, 1031)) == [("conversion", False, "i1", 1020, 0.0)]
    assert a.clicks == {}


def test_order_before_click_within_lateness_is_attributed() -> None:
    """The orders topic runs ahead of the clickstream: an order (ts 30) processed before
    the click that led to it (ts 25) is held until the watermark passes it, and then
    credited to that click."""
    a = attribution()
    imp(a, "i1", 0)
    assert buy(a, 30, 50.0) == []
    assert a.orders == {"u": [(30, 50.0)]}
    assert clk(a, "i1", 25) == []
    labels = tick(a, 500)
    assert ("converted", True, "i1", 30, 50.0) in s(labels)
    assert ("click", True, "i1", 100, 0.0) in s(labels)  # the click label is still produced
    assert a.orders == {}


def test_held_order_is_decided_once_the_watermark_passes_it() -> None:
    """A held order is decided when the watermark passes its time: a click read after
    that no longer claims it (the watermark already said nothing earlier would come)."""
    a = attribution()
    imp(a, "i1", 0)
    buy(a, 30, 50.0)
    tick(a, 51)  # watermark 41 > 30: decided, no click known -> no conversion
    assert a.orders == {}
    assert clk(a, "i1", 25) == []
    assert [lb for lb in tick(a, 5000) if lb.kind == "conversion" and lb.y] == []


# Bounded state ---------------------------------------------------------------------


def test_pending_impressions_bounded_evicting_oldest() -> None:
    """With max_pending=2, a third impression evicts the oldest (by event time); the
    evicted one never yields a label and is counted, so memory stays bounded under an
    impression flood."""
    a = attribution(max_pending=2)
    imp(a, "old", 5)
    imp(a, "older", 1)
    imp(a, "new", 9)
    assert sorted(a.impressions) == ["new", "old"]
    assert a.counters["evicted"] == 1
    assert sorted(lb.impression_id for lb in tick(a, 500)) == ["new", "old"]


def test_clicks_per_user_bounded_evicting_first() -> None:
    """With max_clicks_per_user=2, a user's third open click evicts the first; only the
    two kept clicks can convert or close as negatives."""
    a = attribution(max_clicks_per_user=2)
    for k in range(3):
        imp(a, f"i{k}", k)
        clk(a, f"i{k}", 10 + k)
    assert [c.impression_id for c in a.clicks["u"]] == ["i1", "i2"]
    assert a.counters["evicted"] == 1
    labels = tick(a, 2000)
    assert sorted(lb.impression_id for lb in labels if lb.kind == "conversion") == ["i1", "i2"]
    assert sorted(lb.impression_id for lb in labels if lb.kind == "click") == ["i0", "i1", "i2"]


# Snapshots -------------------------------------------------------------------------


def _continue(a: Attribution) -> list[tuple[str, bool, str, int, float]]:
    out: list[Label] = []
    out += imp(a, "i3", 300)  # finds the held early click (302)
    out += clk(a, "iw", 306, user="w")  # w's held order (312) is credited to it later
    out += buy(a, 800, 40.0, user="v")  # converts v's open click
    out += tick(a, 5000)
    return s(out)


def test_state_round_trip_preserves_future_labels() -> None:
    """to_state -> JSON -> Attribution.from_state (a fresh one): pending impressions
    (clicked or not), open clicks, held early clicks and held early orders all survive,
    so a worker restored from a snapshot emits exactly the labels the original would."""
    a = attribution()
    imp(a, "i1", 0)
    clk(a, "i1", 50)
    imp(a, "iv", 60, user="v")
    clk(a, "iv", 70, user="v")
    imp(a, "iw", 280, user="w")
    imp(a, "i2", 290)
    clk(a, "i3", 302)  # early click: impression i3 not seen yet
    buy(a, 312, 25.0, user="w")  # held order: w's click not seen yet
    assert s(a.expire()) == [("click", True, "i1", 100, 0.0), ("click", True, "iv", 160, 0.0)]
    state = orjson.loads(orjson.dumps(a.to_state()))
    b = Attribution.from_state(state, click_window=CLICK_W, conversion_window=CONV_W, lateness=LATE)
    assert orjson.dumps(b.to_state()) == orjson.dumps(state)
    expected = [  # in the order the watermark passes them
        ("converted", True, "iw", 312, 25.0),
        ("click", True, "iw", 380, 0.0),
        ("click", False, "i2", 390, 0.0),
        ("click", True, "i3", 400, 0.0),
        ("converted", True, "iv", 800, 40.0),
        ("conversion", False, "i1", 1050, 0.0),
        ("conversion", False, "i3", 1302, 0.0),  # u's windows close together at 1050
        ("conversion", True, "iv", 1070, 0.0),
        ("conversion", True, "iw", 1306, 0.0),
    ]
    assert _continue(b) == expected
    assert _continue(a) == expected
    assert b.to_state() == a.to_state()


def test_last_touch_holds_when_the_last_click_arrives_late() -> None:
    """Clicks at 20 (i1) and 25 (i2), order at 30; the clickstream lags, so the click at
    25 is read after the order (well within lateness). Processing in time order gives
    the conversion to i2 (last touch) and a negative for i1; skewed processing must give
    the same labels, otherwise live and replay disagree on who gets the conversion."""

    def labels(order_first: bool) -> list[tuple[str, bool, str, int, float]]:
        a = attribution()
        out: list[Label] = []
        imp(a, "i1", 0)
        imp(a, "i2", 5)
        out += clk(a, "i1", 20)
        if order_first:
            out += buy(a, 30, 50.0)
            out += clk(a, "i2", 25)
        else:
            out += clk(a, "i2", 25)
            out += buy(a, 30, 50.0)
        out += tick(a, 5000)
        return sorted(s(out))

    in_time_order = labels(order_first=False)
    assert ("converted", True, "i2", 30, 50.0) in in_time_order
    assert labels(order_first=True) == in_time_order
