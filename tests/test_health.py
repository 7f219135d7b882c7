"""The probe rules of streams/health.py, on a fake clock."""

from __future__ import annotations

from streams.health import Health


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def health(**kw: float) -> tuple[Health, Clock]:
    clock = Clock()
    h = Health(now_getter=clock, **kw)  # type: ignore[arg-type]
    h.agent_started()
    h.broker_reached()
    return h, clock


def test_healthy_worker_is_live_and_ready() -> None:
    h, _ = health()
    assert h.liveness() == [] and h.readiness(recovering=False) == []
    report = h.report(recovering=False)
    assert report["live"] is True and report["ready"] is True


def test_recovery_is_not_ready_but_live() -> None:
    h, _ = health()
    assert h.readiness(recovering=True) == ["recovering"] and h.liveness() == []


def test_a_crash_loop_fails_liveness_until_the_crashes_age_out() -> None:
    h, clock = health(crash_limit=3, crash_window_s=60)
    for _ in range(3):
        h.agent_stopped(RecursionError("deep"))
        clock.t += 5
        h.agent_started()
    assert h.liveness() and h.liveness()[0].startswith("crash_loop:3")
    assert h.report(recovering=False)["last_crash"] == "RecursionError: deep"
    clock.t += 61
    assert h.liveness() == []


def test_an_agent_that_stays_stopped_fails_liveness_after_the_grace() -> None:
    h, clock = health(restart_grace_s=30)
    h.agent_stopped(ValueError("x"))
    clock.t += 10
    assert h.liveness() == []  # Faust's supervisor restarts it within the grace
    clock.t += 25
    assert h.liveness() == ["agent_stopped"]
    h.agent_started()
    assert h.liveness() == []


def test_broker_unreachable_fails_readiness_after_its_timeout() -> None:
    h, clock = health(broker_timeout_s=15)
    h.broker_failed("KafkaConnectionError: refused")
    clock.t += 10
    assert h.readiness(recovering=False) == []
    clock.t += 6
    assert h.readiness(recovering=False) == ["broker_unreachable:KafkaConnectionError: refused"]
    h.broker_reached()
    assert h.readiness(recovering=False) == []


def test_a_partition_with_lag_and_no_progress_is_stalled() -> None:
    h, clock = health(stall_after_s=30, broker_timeout_s=1e9)
    tp = ("clickstream", 1)
    h.progress(tp, next_offset=100, end_offset=100)  # caught up: never stalled
    clock.t += 100
    h.progress(tp, next_offset=100, end_offset=100)
    assert h.readiness(recovering=False) == []
    h.progress(tp, next_offset=100, end_offset=120)  # backlog appears
    clock.t += 20
    h.progress(tp, next_offset=110, end_offset=130)  # progress resets the clock
    clock.t += 25
    h.progress(tp, next_offset=110, end_offset=130)
    assert h.readiness(recovering=False) == []
    clock.t += 10
    h.progress(tp, next_offset=110, end_offset=130)
    assert h.readiness(recovering=False) == ["stalled:clickstream[1]"]
    assert h.report(recovering=False)["lag"] == {"clickstream[1]": 20}
    h.forget(set())
    assert h.readiness(recovering=False) == []
