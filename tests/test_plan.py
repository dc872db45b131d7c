"""LR plans per schedule family (the factors measured by benchmarks/suggest_quality.py)."""

from __future__ import annotations

import pytest

from lrtune.errors import ConfigError
from lrtune.plan import FACTORS, TARGETS, factor_for, plan
from lrtune.schedules import REGISTRY


@pytest.mark.parametrize(
    ("target", "factor"), [("constant", 1), ("cosine", 2), ("step", 2), ("onecycle", 4)]
)
def test_plan_scales_the_headline(target, factor):
    p = plan(0.01, target)
    assert p.lr == pytest.approx(0.01 * factor)
    assert p.low <= p.lr == p.high
    assert f"{0.01 * factor:.3g}" in p.why


def test_onecycle_starts_at_max_lr_over_25():
    p = plan(0.01, "onecycle")
    assert p.low == pytest.approx(0.04 / 25)


def test_every_registry_schedule_has_a_factor_and_unknown_target_is_an_error():
    assert set(REGISTRY) <= set(FACTORS)
    assert factor_for("not-a-schedule") == 1.0
    assert set(TARGETS) <= set(FACTORS)
    with pytest.raises(ConfigError, match="did you mean 'cosine'"):
        plan(0.01, "cosin")
