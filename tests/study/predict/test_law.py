"""Issue 18, the law: fitting recovers known parameters, predicts unseen schedules within the
interval it claims, refuses curves it cannot fit, and optimises a schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrscope.schedules import parse
from lrscope.study.predict.law import Curve, FittedLaw, LawFitError, fit_law
from lrscope.study.predict.optimise import optimise_schedule

T = 400
EVALS = np.arange(10, T + 1, 10)
TRUE = {
    "multi_power": dict(L0=0.5, A=1.0, alpha=0.5, B=0.3, C=2.0, beta=0.6, gamma=0.5),
    "annealing": dict(L0=0.5, A=1.0, alpha=0.5, C=0.002),
}


def lrs_of(spec: str) -> np.ndarray:
    return np.array(parse(spec, total_steps=T).lrs(T))


CONSTANT, COSINE = lrs_of("constant(lr=0.1)"), lrs_of("cosine(lr=0.1, warmup_steps=20)")
HELD_OUT = {"wsd": lrs_of("wsd(lr=0.1, warmup_steps=20, decay_steps=80)"),
            "step": lrs_of("step(lr=0.1, step_size=80, gamma=0.5)")}


def truth(law: str) -> FittedLaw:
    return FittedLaw(law, TRUE[law], residual_sd=0.0, lr_unit=0.1, lam=0.95)


def curves(law: str, noise: float = 0.0, seed: int = 0) -> list[Curve]:
    rng = np.random.default_rng(seed)
    made = []
    for lrs in (CONSTANT, COSINE):
        clean = truth(law).predict(lrs, EVALS)
        made.append(Curve(lrs, EVALS, clean * np.exp(rng.normal(0, noise, clean.size))))
    return made


@pytest.mark.parametrize("law", ["multi_power", "annealing"])
def test_issue18_law_recovers_parameters_noise_free(law: str) -> None:
    fitted = fit_law(curves(law), law, lam=0.95)
    for name, value in TRUE[law].items():
        assert fitted.params[name] == pytest.approx(value, rel=1e-3, abs=1e-6), name
    for lrs in HELD_OUT.values():
        value, low, high = fitted.final(lrs)
        assert value == pytest.approx(truth(law).final(lrs)[0], rel=1e-6)
        assert low <= value <= high and high - low < 1e-4


@pytest.mark.parametrize("law", ["multi_power", "annealing"])
def test_issue18_law_noisy_fit_contains_the_truth(law: str) -> None:
    fitted = fit_law(curves(law, noise=0.01, seed=3), law)
    assert 0.005 < fitted.residual_sd < 0.02  # the noise put in, measured on the log scale
    for lrs in (*HELD_OUT.values(), COSINE):
        true = truth(law).final(lrs)[0]
        value, low, high = fitted.final(lrs)
        assert low < true < high  # within the error it claims
        assert high / low < 1.6 and low < value < high  # and the claim says something


def test_issue18_law_is_deterministic() -> None:
    a = fit_law(curves("annealing", 0.01), "annealing")
    assert a == fit_law(curves("annealing", 0.01), "annealing")



@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_issue18_law_refuses_non_finite_curves(bad: float) -> None:
    broken = curves("annealing")
    values = broken[1].values.copy()
    values[5] = bad
    with pytest.raises(LawFitError, match="not finite"):
        fit_law([broken[0], Curve(COSINE, EVALS, values)])
    with pytest.raises(LawFitError):
        fit_law([])
    with pytest.raises(ValueError, match="law="):
        fit_law(broken, "chinchilla")


def test_issue18_item2_optimised_schedule_is_parseable_and_no_worse() -> None:
    fitted = fit_law(curves("multi_power"))
    spec = optimise_schedule(fitted, T, peak_lr=0.1, warmup_steps=20)
    schedule = parse(spec, total_steps=T)
    lrs = np.array(schedule.lrs(T))
    assert lrs.max() <= 0.1
    best = fitted.final(lrs)[0]
    for rival in ("cosine(lr=0.1, warmup_steps=20)", "wsd(lr=0.1, warmup_steps=20)"):
        assert best <= fitted.final(lrs_of(rival))[0]


def coverage(law: str, replicates: int, noise: float = 0.02) -> tuple[float, float]:
    """Fit on noisy constant + cosine curves, predict the held-out WSD and step schedules'
    final (noisy) value: the fraction inside the claimed 95% interval, and the mean
    half-width in units of the noise's sd (an interval can cover by being useless)."""
    hits, widths = [], []
    for rep in range(replicates):
        fitted = fit_law(curves(law, noise, seed=100 + rep), law, lam=0.95)
        rng = np.random.default_rng(1000 + rep)
        for lrs in HELD_OUT.values():
            measured = truth(law).final(lrs)[0] * np.exp(rng.normal(0, noise))
            _, low, high = fitted.final(lrs)
            hits.append(low <= measured <= high)
            widths.append(np.log(high / low) / 2 / noise)
    return float(np.mean(hits)), float(np.mean(widths))


def test_issue18_law_unseen_schedules_within_the_claimed_interval() -> None:
    covered, width = coverage("annealing", replicates=20)
    assert covered >= 0.85  # 40 checks at a claimed 95%
    assert width < 3 * 1.96  # and the interval is not made wide to cover


@pytest.mark.slow
def test_issue18_law_multi_power_unseen_schedules_within_the_claimed_interval() -> None:
    covered, _ = coverage("multi_power", replicates=10)
    assert covered >= 0.75  # 20 checks at a claimed 95%


def test_issue18_item2_optimise_schedule_refuses_bad_settings() -> None:
    fitted = truth("annealing")
    for total, peak, warmup in ((1, 0.1, 0), (T, 0.0, 0), (T, 0.1, T)):
        with pytest.raises(ValueError, match="optimise_schedule"):
            optimise_schedule(fitted, total, peak, warmup)


def test_issue18_a_prediction_outside_the_laws_domain_claims_no_interval() -> None:
    """A loss fitted on logs, asked about a schedule where the law goes to or below 0 (far from
    its fit runs, e.g. three times the peak LR): the law says nothing there, so the interval is
    unbounded (the race must then train it) instead of a tiny band around a negative loss."""
    t = np.arange(10, 201, 10)
    constant = np.full(200, 0.1)
    fitted = fit_law([Curve(constant, t, 0.3 + 0.5 * (0.1 * t) ** -0.5)], "annealing")
    assert fitted.log
    value, low, high = fitted.final(constant)
    assert math.isfinite(low) and low <= value <= high
    negative = FittedLaw("annealing", {**fitted.params, "L0": -5.0}, fitted.residual_sd,
                         lr_unit=fitted.lr_unit, log=True)
    value, low, high = negative.final(constant * 3)
    assert value <= 0 and low == -math.inf and high == math.inf
