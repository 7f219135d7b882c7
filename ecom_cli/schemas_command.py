"""`ecom-stream schemas`: write the published JSON Schemas of every topic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from backtest.inputs import check_output_folder


def _schemas(args: argparse.Namespace) -> int:
    from online_models.schemas import schemas

    out = Path(args.out)
    check_output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    written = schemas()
    for topic, schema in written.items():
        (out / f"{topic}.schema.json").write_text(
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    print(f"wrote {len(written)} schemas to {out}")
    return 0


def add_schemas_parser(sub: Any) -> None:
    sc = sub.add_parser(
        "schemas",
        help="write the JSON Schemas of every topic",
        description="Write OUT/<topic>.schema.json for every input and output topic, "
        "generated from the typed models (online_models/events.py, outputs.py).",
    )
    sc.add_argument("--out", default="schemas", metavar="OUT", help="folder to write to")
    sc.set_defaults(func=_schemas)
