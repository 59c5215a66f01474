"""TensorBoard event files with the seed study's tags, so its logs and ours sit side by side.

Per optimizer step: ``LR/train`` and ``Loss/train``; per evaluation: ``Loss/test`` and
``Accuracy/test`` (as a fraction in [0, 1]). Written by torch's
:class:`~torch.utils.tensorboard.SummaryWriter`; read back by :func:`read_scalars` with
TensorBoard's own event accumulator.

>>> import tempfile
>>> logdir = tempfile.mkdtemp()
>>> with TensorBoardWriter(logdir) as tb:
...     tb.log_step(0, lr=1e-3, loss=2.3)
...     tb.log_eval(0, loss=2.2, accuracy=0.1)
>>> scalars = read_scalars(logdir)
>>> sorted(scalars), scalars[LOSS_TEST]  # stored as float32
(['Accuracy/test', 'LR/train', 'Loss/test', 'Loss/train'], [(0, 2.200000047683716)])
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrscope.trials.trial import TrialResult

LR_TRAIN = "LR/train"
LOSS_TRAIN = "Loss/train"
LOSS_TEST = "Loss/test"
ACCURACY_TEST = "Accuracy/test"
SEED_TAGS = (LR_TRAIN, LOSS_TRAIN, LOSS_TEST, ACCURACY_TEST)


class TensorBoardWriter:
    """Scalars under the seed's tags in ``logdir`` (created if needed).

    Events are buffered and written by ``flush()`` / ``close()`` (also on leaving a ``with``
    block), or every ``flush_secs`` seconds while a long run goes on.
    """

    def __init__(self, logdir: str | Path, flush_secs: int = 30) -> None:
        # Imported here: tensorboard's import costs about a second, and only writers need it.
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer: Any = SummaryWriter(log_dir=str(self.logdir), flush_secs=flush_secs)

    def log_step(self, step: int, lr: float, loss: float) -> None:
        """The LR and training loss of optimizer step ``step`` (NaN/inf are kept as they are)."""
        self._writer.add_scalar(LR_TRAIN, float(lr), step)
        self._writer.add_scalar(LOSS_TRAIN, float(loss), step)

    def log_eval(self, step: int, loss: float, accuracy: float | None = None) -> None:
        """Test loss (and accuracy, when known) measured after step ``step``."""
        self._writer.add_scalar(LOSS_TEST, float(loss), step)
        if accuracy is not None:
            self._writer.add_scalar(ACCURACY_TEST, float(accuracy), step)

    def log_scalar(self, tag: str, value: float, step: int) -> None:
        """Any other scalar, for tags beyond the seed's."""
        self._writer.add_scalar(tag, float(value), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def tb_dir(out: Path, key: str) -> Path:
    """TensorBoard folder of one trial: DIR/tb/<key with unsafe characters replaced>."""
    safe = "".join(c if c.isalnum() or c in "._=-" else "_" for c in key)
    return out / "tb" / safe


class TensorBoardSink:
    """A study's trials as TensorBoard runs, one folder each (:func:`tb_dir`): the
    :class:`lrscope.study.sink.TrialSink` that ``lrscope compare`` and ``lrscope.compare`` pass.
    A trial heard again (a rerun restarting it) replaces its events, never appends to them."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def trial_recorded(self, key: str, result: TrialResult) -> None:
        tb = tb_dir(self.out, key)
        shutil.rmtree(tb, ignore_errors=True)  # a restarted trial must not append to old events
        with TensorBoardWriter(tb) as writer:
            for step, (lr, loss) in enumerate(zip(result.lr, result.train_loss, strict=True)):
                writer.log_step(step, lr=lr, loss=loss)
            for ev in result.evaluations:
                if ev.loss is not None:
                    writer.log_eval(ev.step, loss=ev.loss, accuracy=ev.accuracy)
                if ev.val_loss is not None:
                    writer.log_scalar("Loss/val", ev.val_loss, ev.step)
                if ev.val_accuracy is not None:
                    writer.log_scalar("Accuracy/val", ev.val_accuracy, ev.step)


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in the event files directly inside ``logdir``: ``{tag: [(step, value)]}``.

    All events are read (no sampling), in the order they were written.
    """
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}
