"""``--parallel auto``: the decision from measurements, its one line, and a real measured choice."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from lrscope.data.tasks import get_task
from lrscope.engines import LocalEngine
from lrscope.schedules import parse
from lrscope.trials.runners import Job, TrialSetup, run_jobs
from lrscope.trials.runners.auto import MARGIN, Candidate, _fastest, choose, decide, project
from lrscope.trials.runners.processes import pool_shape
from lrscope.trials.trial import sgd

MODES = ("none", "batched", "processes")


@given(st.lists(st.floats(1e-4, 1.0), min_size=3, max_size=3),
       st.integers(1, 32), st.integers(2, 16), st.integers(1, 40), st.integers(10, 3000))
def test_auto_never_picks_a_mode_projected_slower(step_s, k, workers, trials, steps):
    sequential, batched, one_thread = step_s
    candidates = project(trials, steps, max(1, trials // k), sequential_s=sequential,
                         batched=(k, batched * k), worker_s=one_thread, workers=workers)
    choice = decide(candidates)
    _check_margin_rule(candidates, choice.mode)
    assert choice.measured and choice.mode in MODES


def _check_margin_rule(candidates, mode):
    """none (fewest threads) unless another is projected MARGIN x faster; then the fastest."""
    none = min((c for c in candidates if c.mode == "none"), key=lambda c: c.threads)
    clear = [c for c in candidates if none.total_s >= MARGIN * c.total_s]
    if mode == "none" and not clear:
        return
    assert clear, f"{mode} chosen though nothing is {MARGIN}x faster than none"
    best = min(c.total_s for c in clear)
    assert any(c.mode == mode and c.total_s == best for c in clear)


def test_issue19_item5_auto_keeps_none_unless_another_mode_is_clearly_faster():
    none = Candidate("none", 0.010, 1, 10.0, "1 thread")
    # 1.25x faster: within the margin, so none, and the line says why
    close = decide([none, Candidate("batched", 0.008, 4, 8.0, "K=4")])
    assert close.mode == "none" and f"no mode projected {MARGIN:g}x faster" in close.line
    # 1.43x faster: over it
    clear = decide([none, Candidate("batched", 0.007, 4, 7.0, "K=4")])
    assert clear.mode == "batched" and "1.4x none's 10 s" in clear.line
    # of two over the margin, the faster; none on more threads is a candidate like any other
    pair = [none, Candidate("processes", 0.01, 1, 7.0, ""),
            Candidate("none", 0.004, 1, 4.0, "2 threads", threads=2)]
    best = decide(pair, workers=2)
    assert (best.mode, best.threads, best.workers) == ("none", 2, 1)
    assert best.line.startswith("parallel auto: none (2 threads): fastest projected, 4 s")


def test_issue19_item5_each_probe_counts_its_fastest_round_on_its_threads():
    seen: dict[int, list[int]] = {1: [], 2: []}
    times = {1: iter([0.30, 0.10, 0.20]), 2: iter([0.05, 0.90, 0.40])}

    def probe(threads):
        def run():
            seen[threads].append(torch.get_num_threads())
            return next(times[threads])
        return run

    before = torch.get_num_threads()
    assert _fastest({1: probe(1), 2: probe(2)}) == {1: 0.10, 2: 0.05}
    assert seen == {1: [1, 1, 1], 2: [2, 2, 2]} and torch.get_num_threads() == before


def test_the_line_gives_the_choice_every_measurement_and_the_refusals():
    candidates = [Candidate("none", 0.0112, 1, 75.0, "1 thread"),
                  Candidate("batched", 0.0140, 8, 80.0, "K=8"),
                  Candidate("processes", 0.0122, 1, 41.0, "1 thread; 6.1 per trial with 2 "
                            "workers, +3 s start")]
    choice = decide(candidates, workers=2)
    line = choice.line
    assert choice.mode == "processes" and "\n" not in line
    assert line.startswith("parallel auto: processes (2 workers x 1 thread): fastest")
    for needle in ("11.2 ms/step", "14 ms/step", "1.75 per trial", "12.2 ms/step", "41 s",
                   "none (1 thread) 75 s", "batched (1 thread) 80 s"):
        assert needle in line, needle
    refused = decide(candidates[:1] + candidates[2:], {"batched": "model: BatchNorm2d"})
    assert refused.mode == "processes" and "batched not possible (model: BatchNorm2d)" in \
        refused.line
    saved = choice.to_dict()
    assert saved["mode"] == "processes" and saved["line"] == line
    assert [c["mode"] for c in saved["candidates"]] == list(MODES)


def test_a_tie_goes_to_the_simpler_mode():
    same = [Candidate(mode, 0.01, 1, 5.0, "") for mode in reversed(MODES)]
    assert decide(same).mode == "none"


def _digits_jobs(schedules: int, seeds: int, steps: int) -> list[Job]:
    specs = [f"constant(lr={0.05 * (i + 1):g})" for i in range(schedules)]
    pairs = [(s, seed) for s in specs for seed in range(seeds)]
    return [Job(f"{s}/seed{seed}", s, parse(s, total_steps=steps), seed, i)
            for i, (s, seed) in enumerate(pairs)]


def test_a_small_study_is_not_measured():
    setup = TrialSetup(get_task("digits", limit_train=256), steps=40, eval_every=20)
    choice = choose(_digits_jobs(2, 2, 40), setup, LocalEngine())
    assert not choice.measured and choice.candidates == ()
    assert choice.mode == "none" and "not measured" in choice.line and "ms/step" not in \
        choice.line


def test_auto_measures_each_mode_here_and_leaves_the_caller_as_found():
    steps = 400
    setup = TrialSetup(get_task("digits", limit_train=512), steps=steps, eval_every=200,
                       make_optimizer=sgd())
    jobs = _digits_jobs(3, 2, steps)
    engine = LocalEngine()
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    choice = choose(jobs, setup, engine)
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    measured = {c.mode for c in choice.candidates}
    assert {"none", "batched"} <= measured  # an MLP batches; processes where there are cores
    assert ("processes" in measured) == (pool_shape(len(jobs))[0] > 1)
    _check_margin_rule(choice.candidates, choice.mode)
    for candidate in choice.candidates:
        assert candidate.step_s > 0 and f"{candidate.step_s * 1e3:.3g} ms/step" in choice.line
    # and the runner's own auto path runs every trial in the chosen mode
    done = [job.key for job, _ in run_jobs(jobs[:2], TrialSetup(setup.task, 40, 20), "auto",
                                           engine)]
    assert sorted(done) == sorted(job.key for job in jobs[:2])
