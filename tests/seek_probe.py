"""Run `ecom-stream worker` with every invalid aiokafka seek logged (test support).

aiokafka refuses a seek to None or a negative offset with a ValueError; inside Faust's
table recovery that error is usually dropped because a pending rebalance wins the race,
and only now and then crashes the worker. A test cannot wait for the rare crash, so this
probe logs each refused seek with its stack; aiokafka still raises, unchanged. Usage:
`python tests/seek_probe.py` (argument list of the worker command)."""

from __future__ import annotations

import sys
import traceback
from typing import Any

MARK = "INVALID-SEEK"


def install() -> None:
    from aiokafka import AIOKafkaConsumer

    seek = AIOKafkaConsumer.seek

    def probed(self: Any, partition: Any, offset: Any) -> Any:
        if not isinstance(offset, int) or offset < 0:
            stack = "".join(traceback.format_stack(limit=8))
            print(f"{MARK} {partition} {offset!r}\n{stack}", file=sys.stderr, flush=True)
        return seek(self, partition, offset)

    AIOKafkaConsumer.seek = probed  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from ecom_cli.main import main

    raise SystemExit(main(["worker"]))
