"""Suggestion rules on synthetic curves with known answers; the headline is the default."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from click.testing import CliRunner

from lrtune.errors import ConfigError
from lrtune.suggest import (
    HEADLINE_RULE,
    MIN_POINTS,
    RULES,
    consensus,
    edge,
    get_rule,
    minimum,
    prepare_curve,
    steepest,
    suggest_all,
    valley,
)

X0 = -3.0  # inflection of the drop (decades)
XB = -1.0  # where the blow-up starts (decades)


def range_curve(noise: float = 0.0, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A range test as a rule sees it: a plateau, a sigmoid drop in log-LR centred on X0,
    a low bottom, then a blow-up from XB on. `noise` adds a deterministic +/- ripple."""
    x = np.linspace(-7.0, 1.0, n)
    loss = 0.5 + 2.0 / (1.0 + np.exp((x - X0) / 0.25))
    loss = loss + np.where(x > XB, 4.0 * (x - XB) ** 2, 0.0)
    loss = loss + noise * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return 10.0**x, loss


def inside(lr: float, lrs: np.ndarray) -> bool:
    """lr within [first LR / 10, last LR], up to rounding (rules may divide by 10)."""
    return lrs[0] / 10 * (1 - 1e-9) <= lr <= lrs[-1] * (1 + 1e-9)


def decades(lr: float | None, target: float) -> float:
    assert lr is not None
    return abs(math.log10(lr) - target)


def test_steepest_is_the_inflection() -> None:
    lrs, loss = prepare_curve(*range_curve())
    assert decades(steepest(lrs, loss), X0) < 0.1


def test_minimum_is_a_tenth_of_the_lowest_point() -> None:
    lrs, loss = prepare_curve(*range_curve())
    i = int(np.argmin(loss))
    assert minimum(lrs, loss) == pytest.approx(lrs[i] / 10)
    assert decades(minimum(lrs, loss), XB - 1.0) < 0.3  # the bottom sits just before XB


def test_valley_lies_in_the_descent_when_the_plateau_is_noisy() -> None:
    # On a noisy plateau the longest decreasing run starts where the real drop starts.
    lrs, loss = prepare_curve(*range_curve(noise=0.01))
    lr = valley(lrs, loss)
    assert lr is not None
    assert X0 - 0.6 < math.log10(lr) < XB


def test_edge_is_a_decade_below_the_rise() -> None:
    lrs, loss = prepare_curve(*range_curve())
    lr = edge(lrs, loss)
    assert lr is not None
    assert XB - 1.2 < math.log10(lr) < XB - 0.5


def test_consensus_is_the_middle_of_its_three_votes() -> None:
    lrs, loss = prepare_curve(*range_curve(noise=0.01))
    votes = sorted(v for v in (steepest(lrs, loss), valley(lrs, loss), minimum(lrs, loss)) if v)
    assert len(votes) == 3
    assert consensus(lrs, loss) == pytest.approx(votes[1])


def test_consensus_survives_one_misfiring_vote() -> None:
    # A spike of steepness right at the start (noise) drags steepest far left; the
    # consensus follows the other two.
    lrs, loss = prepare_curve(*range_curve(noise=0.01))
    bumped = loss.copy()
    bumped[1] -= 0.5
    bumped[0] += 0.5
    assert decades(steepest(lrs, bumped), math.log10(lrs[0])) < 0.1
    assert consensus(lrs, bumped) == pytest.approx(consensus(lrs, loss), rel=0.3)


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_on_the_clean_curve_is_inside_the_range(name: str) -> None:
    lrs, loss = prepare_curve(*range_curve(noise=0.01))
    lr = RULES[name].fn(lrs, loss)
    assert lr is not None
    assert inside(lr, lrs)
    assert lr < 10**XB  # no rule suggests an LR past the blow-up


@pytest.mark.parametrize("name", list(RULES))
@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_short_gives_none(name: str, n: int) -> None:
    lrs, loss = range_curve()
    assert RULES[name].fn(lrs[:n], loss[:n]) is None


@pytest.mark.parametrize("name", list(RULES))
@pytest.mark.parametrize("level", [0.0, 2.3, -1.0, 1e6])
def test_flat_gives_none(name: str, level: float) -> None:
    lrs = np.geomspace(1e-6, 1.0, 50)
    assert RULES[name].fn(lrs, np.full(50, level)) is None


def test_suggest_all_under_min_points_is_all_none() -> None:
    lrs, loss = range_curve()
    out = suggest_all(lrs[: MIN_POINTS - 1], loss[: MIN_POINTS - 1])
    assert out == dict.fromkeys(RULES)


ODD = {
    "increasing": lambda x: x,
    "decreasing": lambda x: -x,
    "v-shape": lambda x: np.abs(x + 3),
    "spike": lambda x: np.where(np.abs(x + 3) < 0.05, 100.0, 1.0),
    "step": lambda x: np.where(x < -3, 2.0, 1.0),
    "negative": lambda x: -5.0 + np.sin(x),
    "huge": lambda x: 1e30 * (2 + np.cos(x)),
    "tiny": lambda x: 1e-30 * (2 + np.cos(x)),
    "random": lambda x: np.random.default_rng(0).random(len(x)),
}


@pytest.mark.parametrize("name", list(RULES))
@pytest.mark.parametrize("shape", list(ODD))
@pytest.mark.parametrize("n", [3, 5, MIN_POINTS, 40])
def test_odd_curves_never_raise(name: str, shape: str, n: int) -> None:
    x = np.linspace(-7.0, 1.0, n)
    lrs, loss = 10.0**x, ODD[shape](x).astype(float)
    lr = RULES[name].fn(lrs, loss)
    assert lr is None or (math.isfinite(lr) and inside(lr, lrs))


def test_unknown_rule_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_rule("valey")
    msg = str(err.value)
    assert "valley" in msg and "consensus" in msg


def test_every_rule_is_documented() -> None:
    for name, info in RULES.items():
        assert info.name == name
        assert info.description and info.fn.__doc__


def test_headline_is_a_registered_rule_and_the_default_everywhere() -> None:
    from lrtune.rangetest import RangeTest, find_lr

    assert HEADLINE_RULE in RULES
    assert inspect.signature(find_lr).parameters["rule"].default == HEADLINE_RULE
    assert inspect.signature(RangeTest.run).parameters["rule"].default == HEADLINE_RULE


def test_find_help_names_the_headline() -> None:
    from lrtune.cli import cli

    result = CliRunner().invoke(cli, ["find", "--help"])
    assert result.exit_code == 0, result.output
    assert HEADLINE_RULE in result.output


def test_combine_is_the_geometric_mean_of_the_inliers():
    from lrtune.suggest import combine

    c = combine([1e-3, 4e-3, None, 2e-3])
    assert c.lr == pytest.approx(2e-3)
    assert c.used == 3 and c.outliers == ()
    sd = np.std(np.log10([1e-3, 4e-3, 2e-3]), ddof=1)
    assert c.se == pytest.approx(sd / np.sqrt(3))
    assert c.uncertainty == pytest.approx(10 ** (4.30 * c.se))  # t, 2 degrees of freedom


def test_combine_leaves_out_a_repeat_more_than_a_decade_off():
    from lrtune.suggest import combine

    c = combine([5e-3, 6e-3, 2e-5, 4e-3])
    assert c.outliers == (2e-5,)
    assert c.lr == pytest.approx((5e-3 * 6e-3 * 4e-3) ** (1 / 3))


def test_combine_edge_cases():
    from lrtune.suggest import combine

    assert combine([]).lr is None and combine([None, 0.0]).lr is None
    one = combine([3e-3])
    assert one.lr == pytest.approx(3e-3) and one.se is None and one.uncertainty is None
    split = combine([1e-6, 1e-2])  # no majority: nothing is an outlier
    assert split.outliers == () and split.lr == pytest.approx(1e-4)
