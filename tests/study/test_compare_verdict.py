"""Issue 19 item 9 through ``lrscope.compare``: ``res.tie`` and the verdict atop its output."""

from __future__ import annotations

import torch
from torch import nn

import lrscope
from lrscope.study.stats.verdict import tie_group


def test_issue19_item9_compare_returns_the_tie_and_prints_the_verdict_first(tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=g)
    y = (x.sum(1) > 0).long()

    def train_data(seed: int):
        return torch.utils.data.DataLoader(list(zip(x, y, strict=True)), batch_size=32,
                                           shuffle=True,
                                           generator=torch.Generator().manual_seed(seed))

    res = lrscope.compare(lambda: nn.Linear(4, 2), lambda p: torch.optim.SGD(p, lr=0.1),
                          train_data, loss_fn=nn.functional.cross_entropy,
                          val_data=train_data(99), test_data=train_data(98),
                          schedules=["constant(lr=0.1)", "constant(lr=0.11)", "constant(lr=3)"],
                          steps=12, seeds=3, parallel="none", out=tmp_path / "s")
    assert isinstance(res.tie, tuple) and res.tie == tie_group(res.leaderboard)
    top = res.leaderboard[0].label
    # issue 18: a winner only when the top is separated from every other (else a tie group)
    assert res.best == (None if res.tie else top) and top not in res.tie
    separated = [r.label for r in res.leaderboard[1:] if r.label not in res.tie]
    assert all(r.vs_best.p_value is not None and r.vs_best.p_value < 0.05
               for r in res.leaderboard if r.label in separated)
    err = " ".join(capsys.readouterr().err.split())  # wrapped at the terminal's width
    opening = "Verdict: No winner: " if res.tie else "Verdict: Best: "
    assert err.index(opening) < err.index("Leaderboard: study")
    assert "on cpu, parallel none" in err and f"lrscope {lrscope.__version__}" in err
