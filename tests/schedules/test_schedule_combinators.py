"""warmup(...) and join(...): torch's SequentialLR as the reference, the built-in warmups, the
properties (hypothesis), specs, bad input, a real optimizer and ``lrscope schedules``.

Conventions, as torch's ``SequentialLR(schedulers, milestones)`` applies them (the LR read
before each ``optimizer.step()``, the scheduler stepped after it): the scheduler after
milestone ``m`` is restarted at its own step 0 at global step ``m``, so ours runs
``inner(step - m)``. Our default warmup, ``peak * (step + 1) / (steps + 1)``, is
``LinearLR(start_factor=1 / (steps + 1), total_iters=steps)``; with ``start_lr`` it is
``LinearLR(start_factor=start_lr / peak, total_iters=steps)``.
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as L

from lrscope import cli
from lrscope import schedules as S
from lrscope.errors import InputError, InputTypeError

PROPERTY = settings(max_examples=int(os.environ.get("LRSCOPE_MAX_EXAMPLES", "60")),
                    deadline=None, derandomize=True)
RTOL = 1e-9


def drive(make, steps: int, lr: float, optimizer: str = "sgd") -> np.ndarray:
    """(steps, 2): lr and momentum a torch scheduler applies, read before each optimizer step."""
    param = torch.nn.Parameter(torch.zeros(1))
    param.grad = torch.zeros(1)
    opt = (torch.optim.Adam([param], lr=lr) if optimizer == "adam"
           else torch.optim.SGD([param], lr=lr, momentum=0.9))
    scheduler, out, group = make(opt), np.empty((steps, 2)), opt.param_groups[0]
    for step in range(steps):
        out[step] = group["lr"], group["betas"][0] if "betas" in group else group["momentum"]
        opt.step()
        scheduler.step()
    return out


def warm(o, steps: int, start_factor: float | None = None) -> L.LinearLR:
    factor = 1 / (steps + 1) if start_factor is None else start_factor
    return L.LinearLR(o, start_factor=factor, end_factor=1.0, total_iters=steps)


SEQUENTIAL = {
    "warmup-multistep": (
        "warmup(multistep(lr=0.1, milestones=[100, 200]), steps=50)", 0.1, 1000,
        lambda o: L.SequentialLR(o, [warm(o, 50), L.MultiStepLR(o, [100, 200], 0.1)], [50])),
    "warmup-step-from-start_lr": (
        "warmup(step(lr=1, step_size=100, gamma=0.5), steps=50, start_lr=0.01)", 1.0, 1000,
        lambda o: L.SequentialLR(o, [warm(o, 50, 0.01), L.StepLR(o, 100, 0.5)], [50])),
    "warmup-cosine": (
        "warmup(cosine(lr=0.5, total_steps=900, min_lr=0.001), steps=100)", 0.5, 1001,
        lambda o: L.SequentialLR(o, [warm(o, 100), L.CosineAnnealingLR(o, 900, 0.001)], [100])),
    "join-constant-cosine-exponential": (
        "join([constant(lr=0.01), cosine(lr=0.1, total_steps=400), "
        "exponential(lr=0.1, gamma=0.99)], boundaries=[100, 500])", 0.1, 1500,
        lambda o: L.SequentialLR(o, [L.ConstantLR(o, 0.1, 100), L.CosineAnnealingLR(o, 400),
                                     L.ExponentialLR(o, 0.99)], [100, 500])),
    "join-warmup-multistep": (  # the spec of the brief; the warmup is its own first piece
        "join([warmup(constant(lr=0.1), steps=10), multistep(lr=0.1, milestones=[100, 200], "
        "gamma=0.1)], boundaries=[10])", 0.1, 1000,
        lambda o: L.SequentialLR(o, [warm(o, 10), L.MultiStepLR(o, [100, 200], 0.1)], [10])),
}


@pytest.mark.parametrize(("spec", "lr", "steps", "make"), SEQUENTIAL.values(), ids=SEQUENTIAL)
def test_matches_torchs_sequential_lr(spec, lr, steps, make) -> None:
    schedule = S.parse(spec)
    np.testing.assert_allclose(schedule.lrs(steps), drive(make, steps, lr)[:, 0], rtol=RTOL,
                               atol=0.0)
    assert schedule.momentum(0) is None


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_warmup_onecycle_matches_torch_lr_and_momentum(optimizer: str) -> None:
    # OneCycleLR leaves the optimizer at its initial LR (0.04) and momentum (0.95) while the
    # warmup runs: ours warms up to onecycle(0) with onecycle's momentum at its step 0.
    schedule = S.parse("warmup(onecycle(max_lr=1, total_steps=500), steps=30)")
    expected = drive(lambda o: L.SequentialLR(
        o, [warm(o, 30), L.OneCycleLR(o, max_lr=1.0, total_steps=500)], [30]), 530, 0.04, optimizer)
    ours = [(schedule(t), schedule.momentum(t)) for t in range(530)]
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=0.0)
    assert schedule.cycles_momentum and schedule.require_total_steps() == 530


BUILT_IN = [  # (built-in family with warmup_steps=W over T steps, the same without: T - W)
    "cosine(lr=0.5, total_steps={T}, min_lr=0.01{w})",
    "polynomial(lr=0.5, total_steps={T}, power=2.0{w})",
    "linear(lr=0.5, total_steps={T}, start_factor=1.0, end_factor=0.1{w})",
    "wsd(lr=0.5, total_steps={T}, decay_steps=300, cooldown='1-sqrt'{w})",
    "constant(lr=0.5{w})",
]


@pytest.mark.parametrize("template", BUILT_IN, ids=lambda t: t.split("(")[0])
def test_warmup_of_a_family_is_its_built_in_warmup(template: str) -> None:
    built_in = S.parse(template.format(T=2000, w=", warmup_steps=150"))
    combined = S.parse(f"warmup({template.format(T=1850, w='')}, steps=150)")
    assert combined.lrs(2100) == built_in.lrs(2100)  # exactly, step for step


# -- properties -------------------------------------------------------------------------------
lrs = st.floats(1e-5, 10.0)
leaves = st.one_of(
    st.builds(S.Constant, lr=lrs),
    st.builds(S.StepDecay, lr=lrs, step_size=st.integers(1, 500), gamma=st.floats(0.5, 1.0)),
    st.builds(S.ExponentialDecay, lr=lrs, gamma=st.floats(0.999, 1.0)),
    st.builds(S.Cosine, lr=lrs, total_steps=st.one_of(st.none(), st.integers(1, 3000))),
    st.builds(S.OneCycle, max_lr=lrs, total_steps=st.integers(2, 3000),
              cycle_momentum=st.booleans()),
    st.builds(S.Cyclic, base_lr=st.just(1e-5), max_lr=lrs, step_size_up=st.integers(1, 300)),
)
warmup_steps = st.integers(0, 300)
start_lrs = st.one_of(st.none(), st.just(0.0), st.floats(1e-8, 1e-3))  # no subnormals


@st.composite
def joins(draw: st.DrawFn, children: st.SearchStrategy[S.Schedule]) -> S.Join:
    pieces = draw(st.lists(children, min_size=1, max_size=4))
    cuts = draw(st.lists(st.integers(1, 5000), min_size=len(pieces) - 1,
                         max_size=len(pieces) - 1, unique=True))
    try:  # a finite piece filled with a segment shorter than its own warmup is refused
        return S.Join(tuple(pieces), tuple(sorted(cuts)))
    except InputError:
        assume(False)
        raise


def combine(children: st.SearchStrategy[S.Schedule]) -> st.SearchStrategy[S.Schedule]:
    return st.one_of(st.builds(S.Warmup, children, warmup_steps, start_lrs), joins(children))


nestings = st.recursive(leaves, combine, max_leaves=6)  # some finite ones without total_steps
runs = nestings.map(lambda s: s.with_total_steps(100_000))  # all with total_steps
steps = st.integers(0, 20_000)


@PROPERTY
@given(nestings)
def test_spec_round_trips_through_parse_for_random_nestings(schedule: S.Schedule) -> None:
    again = S.parse(schedule.spec())
    assert again == schedule and again.spec() == schedule.spec() and hash(again) == hash(schedule)


@PROPERTY
@given(runs, st.integers(1, 300), start_lrs, steps)
def test_warmup_climbs_to_the_inner_first_lr_then_shifts_it(inner, n, start_lr, k) -> None:
    schedule, peak = S.Warmup(inner, n, start_lr), inner(0)
    warmup = [schedule(t) for t in range(n + 1)]
    assert warmup[n] == peak and schedule(n + k) == inner(k)
    assert schedule.momentum(n + k) == inner.momentum(k)
    assert all(schedule.momentum(t) == inner.momentum(0) for t in (0, n - 1))
    if start_lr is None:  # no step at LR 0, strictly increasing into the peak (0 stays 0)
        assert warmup[0] == peak / (n + 1) and warmup[n - 1] == pytest.approx(peak * n / (n + 1))
        assert all(a < b or a == b == 0 for a, b in itertools.pairwise(warmup))
    else:  # from exactly start_lr, by equal steps of (peak - start_lr) / n
        assert warmup[0] == start_lr
        np.testing.assert_allclose(np.diff(warmup), (peak - start_lr) / n, rtol=1e-9,
                                   atol=1e-14 * max(peak, start_lr))


@PROPERTY
@given(joins(runs), steps)
def test_join_is_the_piecewise_inner_schedules(schedule: S.Join, step: int) -> None:
    starts = (0, *schedule.boundaries)
    index = sum(step >= b for b in schedule.boundaries)
    piece, local = schedule.schedules[index], step - starts[index]
    assert schedule(step) == piece(local)
    if piece.momentum(local) is not None:
        assert schedule.momentum(step) == piece.momentum(local)
    for b in schedule.boundaries:  # each piece restarts at its own step 0
        assert schedule(b) == schedule.schedules[starts.index(b)](0)


@PROPERTY
@given(st.integers(1, 300), st.integers(1, 5000), st.integers(1, 5000))
def test_with_total_steps_fills_the_innermost_last_schedule(n, boundary, rest) -> None:
    schedule = S.parse(f"join([constant(lr=0.1), warmup(cosine(lr=1), steps={n})], "
                       f"boundaries=[{boundary}])")
    assert schedule.is_finite and schedule.needs_total_steps()
    filled = schedule.with_total_steps(boundary + n + rest)
    assert filled.require_total_steps() == boundary + n + rest
    assert filled.schedules[1].schedule.total_steps == rest  # type: ignore[attr-defined]
    assert filled.with_total_steps(7) is filled and not filled.needs_total_steps()


def test_join_fills_finite_pieces_and_holds_the_momentum_the_last_cycling_one_left() -> None:
    schedule = S.parse("join([cosine(lr=1), onecycle(max_lr=1)], boundaries=[100])")
    assert schedule.spec() == (  # the finite pieces before the last get their segment's length
        "join([cosine(lr=1, total_steps=100), onecycle(max_lr=1)], boundaries=[100])")
    assert schedule.needs_total_steps() and schedule(99) > 0
    assert schedule.with_total_steps(300)(100) == pytest.approx(0.04, rel=1e-12)
    schedule = S.parse("join([constant(lr=0.04), onecycle(max_lr=1, total_steps=300), "
                       "cosine(lr=0.1, total_steps=200)], boundaries=[100, 400])")
    assert schedule.cycles_momentum and schedule.momentum(99) is None
    assert schedule.momentum(100) == 0.95 and schedule.momentum(350) == S.OneCycle(
        max_lr=1, total_steps=300).momentum(250)
    assert schedule.momentum(400) == schedule.momentum(10_000) == schedule.momentum(399)


# -- spec syntax and bad input ----------------------------------------------------------------
def test_spec_syntax() -> None:
    spec = "warmup(cosine(lr=0.5), steps=100)"
    assert S.parse(spec) == S.Warmup(S.Cosine(lr=0.5), steps=100) and S.parse(spec).spec() == spec
    assert S.parse("warmup(schedule=cosine(lr=0.5), steps=100)") == S.parse(spec)
    assert S.parse("warmup(ramp, steps=0, start_lr=None)") == S.Warmup(S.Ramp(), steps=0)
    joined = S.parse("join([warmup(constant(lr=0.1), steps=10), multistep(lr=0.1, "
                     "milestones=[100, 200], gamma=0.1)], boundaries=[10])")
    assert joined.spec() == ("join([warmup(constant(lr=0.1), steps=10), multistep(lr=0.1, "
                             "milestones=[100, 200])], boundaries=[10])")  # gamma: the default
    assert S.parse("join(schedules=(constant(lr=1),))") == S.Join((S.Constant(lr=1),))


ERRORS = {  # spec -> the one line it raises (its start)
    "warmup(cosine(lr=0.5), steps=-1)": "warmup: steps=-1 is out of range; it must be >= 0",
    "warmup(cosine(lr=0.5), steps=2.5)": "warmup: steps=2.5 must be an integer",
    "warmup(cosine(lr=0.5), steps=5, start_lr=-1)": "warmup: start_lr=-1 is out of range",
    "warmup(cosine(lr=0.5))": "warmup: missing required argument steps",
    "warmup(cosine(lr=0.5), 100)": "warmup: only schedule may be given without a name; name "
                                   "the others (warmup takes schedule, steps, start_lr), not '100'",
    "warmup(0.5, steps=5)": "warmup: schedule=0.5 is not a schedule; give a family call like",
    "warmup([constant(lr=1)], steps=5)": "warmup: schedule=[constant(lr=1)] must be one schedule",
    "warmup(cosine(lr=-0.5), steps=5)": "cosine: lr=-0.5 is out of range",
    "warmup(cosin(lr=0.5), steps=5)": "unknown schedule family 'cosin' (did you mean 'cosine'?)",
    "warmupp(cosine(lr=0.5), steps=5)": "unknown schedule family 'warmupp' (did you mean 'warmup'",
    "warmup(cosine(lr=0.5, warmup_steps=1/2), steps=5)": "cosine: warmup_steps=1 / 2 is not a lit",
    "join([constant(lr=1), constant(lr=1), constant(lr=1)], boundaries=[20, 10])":
        "join: boundaries=[20, 10] must increase",
    "join([constant(lr=1), constant(lr=1), constant(lr=1)], boundaries=[10])":
        "join: 3 schedules need 2 boundaries, got 1",
    "join([constant(lr=1)], boundaries=[10])": "join: 1 schedule needs 0 boundaries, got 1",
    "join([constant(lr=1), constant(lr=1)], boundaries=[0])":
        "join: boundaries=0 is out of range; it must be >= 1",
    "join([], boundaries=[])": "join: schedules=[] must be a non-empty list of schedules",
    "join(constant(lr=1))": "join: schedules=constant(lr=1) must be a non-empty list of sched",
    "join([constant(lr=1), 3], boundaries=[5])": "join: schedules=3 is not a schedule",
    "join([cosine(lr=1, warmup_steps=50), constant(lr=1)], boundaries=[20])":
        "cosine: warmup_steps=50 must be less than total_steps=20",
    "join([constant(lr=1), multistep(lr=1, milestones=[3, 2])], boundaries=[5])":
        "multistep: milestones=[3, 2] must be in increasing order",
}


@pytest.mark.parametrize(("spec", "message"), ERRORS.items(), ids=range(len(ERRORS)))
def test_bad_input_is_one_line_naming_the_argument(spec: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        S.parse(spec)
    assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)


def test_bad_types_are_type_errors_and_short_runs_are_refused() -> None:
    with pytest.raises(InputTypeError, match=r"^warmup: schedule=0.1 must be one schedule"):
        S.Warmup(0.1, steps=5)  # type: ignore[arg-type]
    with pytest.raises(InputTypeError, match=r"^join: boundaries=5 must be a list of steps"):
        S.Join((S.Constant(lr=1),), 5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^warmup: steps=100 must be less than total_steps=100"):
        S.parse("warmup(cosine(lr=1), steps=100)", total_steps=100)
    with pytest.raises(InputError, match=r"^join: total_steps=50 must be greater than the last "):
        S.parse("join([constant(lr=1), cosine(lr=1)], boundaries=[50])", total_steps=50)
    with pytest.raises(InputError, match=r"^missing total steps for cosine: "):
        S.parse("warmup(cosine(lr=1), steps=5)")(0)


# -- a torch optimizer and the CLI ------------------------------------------------------------
def test_schedule_lr_drives_a_two_group_optimizer_with_a_combinator() -> None:
    schedule = S.parse("join([warmup(constant(lr=0.04), steps=20), onecycle(max_lr=1), "
                       "cosine(lr=0.1, total_steps=200)], boundaries=[100, 400])")
    assert "onecycle(max_lr=1, total_steps=300)" in schedule.spec()  # its segment's length
    body, head = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    body.grad, head.grad = torch.zeros(1), torch.zeros(1)
    opt = torch.optim.SGD([{"params": [body], "lr": 1.0}, {"params": [head], "lr": 0.1}],
                          lr=1.0, momentum=0.9)
    adapter = S.ScheduleLR(opt, schedule)
    for step in range(700):
        lr, momentum = schedule(step), schedule.momentum(step)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([lr, 0.1 * lr], rel=1e-12)
        expected = 0.9 if momentum is None else momentum  # untouched before onecycle
        assert [g["momentum"] for g in opt.param_groups] == [expected, expected]
        opt.step()
        adapter.step()
    assert S.apply_schedule(opt, schedule, 150, S.group_ratios(opt)) == schedule(150)


def test_cli_plots_and_writes_combinator_specs(tmp_path: Path, capsys) -> None:
    specs = ["warmup(step(lr=1, step_size=100, gamma=0.5), steps=50)",
             "join([constant(lr=0.01), onecycle(max_lr=1)], boundaries=[100])"]
    out, values = tmp_path / "s.png", tmp_path / "v.csv"
    code = cli.main(["schedules", *specs, "--steps", "500", "--out", str(out),
                     "--csv", str(values)])
    assert code == 0 and out.stat().st_size > 0 and "wrote" in capsys.readouterr().out
    with values.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 500
    for i, spec in enumerate(specs):
        schedule, block = S.parse(spec, total_steps=500), rows[i * 500:(i + 1) * 500]
        assert {r["spec"] for r in block} == {schedule.spec()}
        assert [float(r["lr"]) for r in block] == schedule.lrs(500)
        assert [r["momentum"] for r in block] == [
            "" if schedule.momentum(t) is None else repr(schedule.momentum(t)) for t in range(500)]
    assert rows[500]["spec"] == "join([constant(lr=0.01), onecycle(max_lr=1, total_steps=400)], " \
                                "boundaries=[100])"
    assert rows[500 + 99]["momentum"] == "" and rows[500 + 100]["momentum"] == "0.95"
    code = cli.main(["schedules", "join([constant(lr=1)], boundaries=[10])", "--out", str(out)])
    assert code == 2 and capsys.readouterr().err == (
        "lrscope schedules: error: join: 1 schedule needs 0 boundaries, got 1 (boundaries=[10])\n")
