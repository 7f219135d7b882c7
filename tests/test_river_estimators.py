"""The click/conversion and revenue models are River estimators: they pass River's own
estimator checks, and River's metrics and progressive validation run on them unchanged."""

from __future__ import annotations

import itertools
import math

import pytest
from river import (
    base,
    checks,
    datasets,
    dummy,
    evaluate,
    linear_model,
    metrics,
    preprocessing,
    stats,
)

from online_models.features import LEARNING_RATE_SCALE
from online_models.models import OnlineLogistic, OnlineRevenue


@pytest.mark.parametrize("model", [OnlineLogistic(), OnlineRevenue()], ids=repr)
def test_passes_river_check_estimator(model: base.Estimator) -> None:
    for params in model._unit_test_params():
        checks.check_estimator(model.clone(params))


def test_logistic_is_a_binary_river_classifier() -> None:
    m = OnlineLogistic()
    assert isinstance(m, base.Classifier) and not m._multiclass
    assert m.predict_proba_one({"a": 1.0}) == {False: 0.5, True: 0.5}
    for _ in range(50):
        m.learn_one({"a": 1.0}, True)
    proba = m.predict_proba_one({"a": 1.0})
    assert proba[True] == m.p_one({"a": 1.0}) > 0.9
    assert math.isclose(sum(proba.values()), 1.0)
    assert m.predict_one({"a": 1.0}) is True


def test_progressive_val_score_runs_unchanged() -> None:
    """River's metrics and progressive validation take the model as they take River's own
    logistic regression; on the same stream it scores at least as well."""
    stream = list(itertools.islice(datasets.Phishing(), 600))

    def score(model: base.Classifier) -> tuple[float, float, float]:
        loss, auc, acc = metrics.LogLoss(), metrics.ROCAUC(), metrics.Accuracy()
        evaluate.progressive_val_score(stream, model, loss + auc + acc)
        return loss.get(), auc.get(), acc.get()

    loss, auc, acc = score(OnlineLogistic(learning_rate=0.1))
    river_loss, river_auc, river_acc = score(linear_model.LogisticRegression())
    assert loss < min(river_loss, math.log(2))  # ln 2: the constant 0.5
    assert auc > max(river_auc, 0.85)
    assert acc >= river_acc


def test_revenue_in_a_river_pipeline() -> None:
    """A River pipeline (a scaler in front) and progressive validation take the revenue
    model unchanged; it beats the running mean."""
    stream = list(itertools.islice(datasets.TrumpApproval(), 300))
    model = preprocessing.StandardScaler() | OnlineRevenue(learning_rate=0.01, prior=40.0)
    mae = evaluate.progressive_val_score(stream, model, metrics.MAE())
    mean = evaluate.progressive_val_score(
        stream, dummy.StatisticRegressor(stats.Mean()), metrics.MAE()
    )
    assert mae.get() < mean.get() / 2


def test_p_one_is_predict_proba_true_bit_for_bit() -> None:
    m = OnlineLogistic(learning_rate=0.2, scale=LEARNING_RATE_SCALE)
    for i, (x, y) in enumerate(itertools.islice(datasets.Phishing(), 200)):
        m.learn_one(x, y, weight=1.0 + (i % 3) / 2)
        assert m.predict_proba_one(x)[True] == m.p_one(x)
        assert m.predict_one(x) == (m.p_one(x) > 0.5)
