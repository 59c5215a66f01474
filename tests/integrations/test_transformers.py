"""lrscope.integrations.transformers: find_lr on a Trainer, lrscope schedules in a Trainer.

Tiny config-built models (no downloads), a dict-of-tensors dataset, CPU only.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lrscope.errors import InputError  # noqa: E402
from lrscope.integrations.transformers import find_lr, lrscope_scheduler  # noqa: E402
from lrscope.schedules import Cosine  # noqa: E402

VOCAB, LENGTH = 100, 12


class TokenDataset(torch.utils.data.Dataset):
    """Sequences labelled by whether their first token is in the upper half of the vocab."""

    def __init__(self, n: int = 64, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)
        self.labels = (self.ids[:, 0] >= VOCAB // 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(LENGTH, dtype=torch.long),
                "labels": self.labels[i]}


class CountingTrainer(transformers.Trainer):
    """Records every compute_loss call: the model's mode, autocast, LR and a weight checksum."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[dict[str, Any]] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.calls.append({
            "training": model.training,
            "autocast": torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"),
            "lr": self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else None,
            "weights": model.classifier.weight.detach().clone(),
            "device": inputs["input_ids"].device.type,
        })
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def tiny_bert(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=LENGTH)
    return transformers.BertForSequenceClassification(config)


def arguments(tmp_path: Any, **overrides: Any) -> Any:
    settings: dict[str, Any] = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4, report_to=[],
        logging_steps=1, save_strategy="no", disable_tqdm=True, seed=0)
    parameters = inspect.signature(transformers.TrainingArguments).parameters
    settings["use_cpu" if "use_cpu" in parameters else "no_cuda"] = True  # no_cuda: before 4.34
    settings.update(overrides)
    return transformers.TrainingArguments(**settings)


def cloned_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def assert_tensors_equal(before: Any, after: Any) -> None:
    """Nested dicts/lists of tensors and plain values, compared bitwise."""
    if isinstance(before, torch.Tensor):
        assert isinstance(after, torch.Tensor) and torch.equal(before, after)
    elif isinstance(before, dict):
        assert before.keys() == after.keys()
        for key in before:
            assert_tensors_equal(before[key], after[key])
    elif isinstance(before, (list, tuple)):
        assert len(before) == len(after)
        for a, b in zip(before, after, strict=True):
            assert_tensors_equal(a, b)
    else:
        assert before == after


def dataloader_refs(trainer: Any) -> list[Any]:
    return list(trainer.accelerator.gradient_state.dataloader_references)


def test_find_lr_uses_the_trainer_and_leaves_it_as_found(tmp_path):
    model = tiny_bert()
    model.eval()  # find_lr trains in train mode and puts eval back
    trainer = CountingTrainer(model=model, args=arguments(
        tmp_path, gradient_accumulation_steps=2, learning_rate=1e-4), train_dataset=TokenDataset())
    weights = cloned_state(model.state_dict())
    rng, refs = torch.get_rng_state(), dataloader_refs(trainer)
    loaders = len(trainer.accelerator._dataloaders)

    result = find_lr(trainer, end_lr=1.0, num_steps=12)

    assert result.steps == 12 and result.accumulation_steps == 2
    assert result.suggestion is not None and 1e-4 <= result.suggestion <= 1.0
    assert result.lrs[0] == pytest.approx(1e-4)  # start_lr=None: the Trainer's LR
    # The subclass's compute_loss was the loss: accumulation x steps calls, in train mode,
    # on the Trainer's (created) optimizer, whose LR followed the ramp.
    assert len(trainer.calls) == 2 * 12
    assert all(call["training"] and not call["autocast"] for call in trainer.calls)
    assert [call["lr"] for call in trainer.calls[::2]] == pytest.approx(list(result.lrs))
    assert not torch.equal(trainer.calls[0]["weights"], trainer.calls[-1]["weights"])
    # ... and everything is back.
    assert_tensors_equal(weights, model.state_dict())
    assert not any(module.training for module in model.modules())
    assert trainer.optimizer is None
    assert torch.equal(torch.get_rng_state(), rng)
    assert dataloader_refs(trainer) == refs
    assert len(trainer.accelerator._dataloaders) == loaders


def test_issue16_item19_find_lr_suggests_the_range_tests_headline(tmp_path):
    """find_lr's suggestion is the rule lrscope.range_test's result.suggestion reads (the
    library's headline), not the steepest point."""
    import inspect

    from lrscope.rangetest.suggest import HEADLINE

    assert inspect.signature(find_lr).parameters["prefer"].default == HEADLINE
    trainer = CountingTrainer(model=tiny_bert(), args=arguments(tmp_path, learning_rate=1e-4),
                              train_dataset=TokenDataset())
    result = find_lr(trainer, end_lr=10.0, num_steps=20)  # a clear descent: every rule answers
    assert result.rule == HEADLINE and result.suggestion == result.suggestions[HEADLINE]


def test_find_lr_with_the_users_optimizer_restores_its_state(tmp_path):
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model(**{k: v[None] for k, v in TokenDataset()[0].items()}).loss.backward()
    optimizer.step()  # Adam moments to restore
    trainer = CountingTrainer(model=model, args=arguments(tmp_path), train_dataset=TokenDataset(),
                              optimizers=(optimizer, scheduler))
    weights, opt_state = cloned_state(model.state_dict()), optimizer.state_dict()
    opt_state = {"state": {k: cloned_state(v) for k, v in opt_state["state"].items()},
                 "param_groups": [dict(g) for g in opt_state["param_groups"]]}

    result = find_lr(trainer, start_lr=1e-5, end_lr=1.0, num_steps=10)

    assert len(trainer.calls) == 10
    assert [call["lr"] for call in trainer.calls] == pytest.approx(list(result.lrs))
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1.0)
    assert trainer.optimizer is optimizer and trainer.lr_scheduler is scheduler
    assert scheduler.last_epoch == 0
    assert_tensors_equal(weights, model.state_dict())
    assert_tensors_equal(opt_state, optimizer.state_dict())
    assert optimizer.param_groups[0]["lr"] == 3e-4


def test_find_lr_clips_gradients_like_the_trainer(tmp_path):
    """SGD without momentum moves the weights by lr x (clipped) gradient, so each step's change
    is at most lr x max_grad_norm when clipping is on, and larger somewhere when it is off."""
    def max_excess(clip_grad: bool) -> float:
        model = tiny_bert()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = CountingTrainer(model=model, args=arguments(tmp_path, max_grad_norm=1e-3),
                                  train_dataset=TokenDataset(),
                                  optimizers=(optimizer, torch.optim.lr_scheduler.LambdaLR(
                                      optimizer, lambda step: 1.0)))
        result = find_lr(trainer, start_lr=0.1, end_lr=1.0, num_steps=6, clip_grad=clip_grad)
        moves = [(b["weights"] - a["weights"]).norm().item()
                 for a, b in zip(trainer.calls, trainer.calls[1:], strict=False)]
        return max(move / (lr * 1e-3) for move, lr in zip(moves, result.lrs, strict=False))

    assert max_excess(clip_grad=True) <= 1.0 + 1e-4
    assert max_excess(clip_grad=False) > 2.0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_find_lr_mixed_precision_runs_under_autocast(tmp_path, precision):
    model = tiny_bert()
    trainer = CountingTrainer(model=model, args=arguments(tmp_path, **{precision: True}),
                              train_dataset=TokenDataset())
    weights = cloned_state(model.state_dict())
    result = find_lr(trainer, start_lr=1e-5, end_lr=1.0, num_steps=6)
    assert result.steps == 6 and result.suggestion is not None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    assert [call["autocast"] for call in trainer.calls] == [dtype] * 6
    assert_tensors_equal(weights, model.state_dict())
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_set_lr_then_train_then_find_lr_again(tmp_path, monkeypatch):
    model = tiny_bert()
    trainer = transformers.Trainer(model=model, args=arguments(
        tmp_path, max_steps=2, lr_scheduler_type="constant"), train_dataset=TokenDataset())
    result = find_lr(trainer, start_lr=1e-5, end_lr=1.0, num_steps=8, set_lr=True)
    assert trainer.args.learning_rate == result.suggestion
    trainer.train()  # the Trainer works as before and builds its optimizer from the suggestion
    logged = [row["learning_rate"] for row in trainer.state.log_history if "learning_rate" in row]
    assert logged and all(lr == pytest.approx(result.suggestion) for lr in logged)
    # After train(), trainer.optimizer is accelerate's wrapper: find_lr unwraps and restores it.
    wrapped = trainer.optimizer
    weights = cloned_state(model.state_dict())
    moments = {k: cloned_state(v) for k, v in wrapped.optimizer.state_dict()["state"].items()}
    clips: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm, **kw: clips.append(max_norm) or clip(
                            params, max_norm, **kw))
    again = find_lr(trainer, start_lr=1e-5, end_lr=1.0, num_steps=8)
    assert again.steps >= 2 and math.isfinite(again.losses[0])
    assert clips == [1.0] * again.steps  # the step hook ran on the unwrapped optimizer
    assert trainer.optimizer is wrapped
    assert_tensors_equal(weights, model.state_dict())
    assert_tensors_equal(moments, wrapped.optimizer.state_dict()["state"])


def test_find_lr_rejects_what_is_not_a_trainer():
    with pytest.raises(TypeError, match="transformers Trainer"):
        find_lr(torch.nn.Linear(2, 2))


def test_the_trainer_steps_an_lrscope_scheduler_once_per_optimizer_step(tmp_path):
    model = tiny_bert()
    body = [p for name, p in model.named_parameters() if not name.startswith("classifier")]
    optimizer = torch.optim.AdamW([{"params": body, "lr": 1e-3},
                                   {"params": model.classifier.parameters(), "lr": 1e-2}])
    steps = 6
    scheduler = lrscope_scheduler(optimizer, "cosine(lr=0.01, warmup_steps=2, min_lr=0.001)",
                                  num_training_steps=steps)
    schedule = scheduler.schedule
    assert schedule == Cosine(lr=0.01, total_steps=steps, warmup_steps=2, min_lr=0.001)
    used: list[list[float]] = []
    optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: used.append([g["lr"] for g in opt.param_groups]))
    trainer = transformers.Trainer(model=model, args=arguments(
        tmp_path, max_steps=steps, gradient_accumulation_steps=2), train_dataset=TokenDataset(),
        optimizers=(optimizer, scheduler))
    trainer.train()

    # One LR per optimizer step (6, not the 12 micro-batches): schedule(0) .. schedule(5),
    # the second group at 10x the first throughout; after N steps the LR is schedule(N).
    assert [lrs[0] for lrs in used] == pytest.approx([schedule(i) for i in range(steps)])
    assert [lrs[1] for lrs in used] == pytest.approx([10 * schedule(i) for i in range(steps)])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(schedule(steps))
    logged = [row["learning_rate"] for row in trainer.state.log_history if "learning_rate" in row]
    assert len(logged) == steps
    assert all(any(lr == pytest.approx(u[0]) for u in used) or lr == pytest.approx(schedule(
        steps)) for lr in logged)


def test_lrscope_scheduler_needs_the_length_of_a_finite_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(InputError, match="num_training_steps"):
        lrscope_scheduler(optimizer, "cosine(lr=0.1)")
    constant = lrscope_scheduler(optimizer, "constant(lr=0.5)")  # infinite: no length needed
    assert optimizer.param_groups[0]["lr"] == 0.5 and constant.last_epoch == 0
    with pytest.raises(TypeError, match="Schedule or a spec"):
        lrscope_scheduler(optimizer, 0.1)  # type: ignore[arg-type]
