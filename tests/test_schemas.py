"""The published JSON Schemas in schemas/ are the typed models' own, and real outputs
validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
import pytest

from online_models.outputs import BidAdjustment, Recommendation, RecommendedItem
from online_models.schemas import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


@pytest.mark.parametrize("topic", sorted(schemas()))
def test_published_schema_is_current(topic):
    """A schema change must be published on purpose: `ecom-stream schemas --out schemas`."""
    published = json.loads((SCHEMA_DIR / f"{topic}.schema.json").read_text())
    assert published == schemas()[topic]


def test_outputs_validate_against_published_schemas():
    rec = Recommendation(
        event_id="e",
        ts=1,
        user_id="u",
        items=[RecommendedItem("i", 0.5)],
        strategy="trending",
        model_version="lr1.p0.k0",
        source_event_id="s",
    )
    bid = BidAdjustment(
        event_id="e",
        ts=1,
        user_id=None,
        campaign_id="c",
        multiplier=0.9,
        p_click=None,
        p_conversion=None,
        expected_revenue=None,
        expected_roas=None,
        pacing_factor=0.9,
        reason="pacing",
        ttl_s=900,
        model_version="lr1.p0.k0",
        source_event_id="s",
        shard=0,
        shards=4,
    )
    for topic, obj in (("recommendations", rec), ("bid-adjustments", bid)):
        schema = json.loads((SCHEMA_DIR / f"{topic}.schema.json").read_text())
        jsonschema.validate(msgspec.to_builtins(obj), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"event_id": 1}, json.loads((SCHEMA_DIR / "recommendations.schema.json").read_text())
        )
