"""Training loop: Adam over seeded mini-batches, one history row per epoch.

Shuffling depends only on (seed, epoch), and the trainer's whole position (weights, optimiser,
epoch, batch, partial sums of the running epoch) is one `state_dict`, so a run stopped at any batch
boundary and resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pyanode._errors import SpecError, TrainingDiverged
from pyanode.data import Dataset
from pyanode.specs import TrainSpec
from pyanode.torch._networks import ODEBlock

EVAL_CHUNK = 4096  # samples per forward pass in `Trainer.evaluate`


def batch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of the `n` training points used in `epoch` (a pure function)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def available_device(name: str) -> torch.device:
    """The torch device `name`, checked to be usable here.

    **Raises:** `SpecError` in one line with the fix, e.g. for `cuda` on a torch without CUDA.
    """
    device = torch.device(name)
    kind = device.type
    if kind == "cuda":
        if not torch.cuda.is_available():
            built = "was built without CUDA" if torch.version.cuda is None else "finds no GPU"
            raise SpecError(
                f"train.device={name!r} is not available: this torch ({torch.__version__}) "
                f"{built}; use --device cpu, or install a CUDA build of torch"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise SpecError(
                f"train.device={name!r} is not available: {count} CUDA device(s) here "
                f"(cuda:0 to cuda:{count - 1}); use one of them"
            )
        return device
    if kind == "mps" and not torch.backends.mps.is_available():
        raise SpecError(
            f"train.device={name!r} is not available: MPS needs Apple silicon and a torch built "
            "with MPS; use --device cpu"
        )
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpecError(
            f"train.device={name!r} is not available here ({first}); use --device cpu"
        ) from None
    return device


def loss_name(spec: TrainSpec, data: Dataset) -> str:
    """`cross-entropy` or `mse`: the spec's choice, or the data's task for `auto`."""
    if spec.loss != "auto":
        return spec.loss
    return "cross-entropy" if data.task == "classification" else "mse"


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` intra-op threads, restoring the previous setting afterwards."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Trainer:
    """Train `model` on `train_data` as `spec` says; `run()` returns the per-epoch history.

    Each history row holds: epoch, loss (mean over the epoch's batches), train_loss, test_loss,
    train_acc and test_acc (classification), nfe_forward and nfe_backward (mean per batch, summed
    over ODE blocks), seconds (training time of the epoch, evaluation excluded).
    """

    def __init__(
        self,
        model: nn.Module,
        spec: TrainSpec,
        train_data: Dataset,
        test_data: Dataset | None = None,
    ):
        self.spec = spec
        self.device = available_device(spec.device)
        self.dtype: torch.dtype = getattr(torch, spec.dtype)
        self.model = model.to(device=self.device, dtype=self.dtype)
        self.loss = loss_name(spec, train_data)
        self.feature_shape = train_data.feature_shape
        self._train = self._tensors(train_data)
        self._test = None if test_data is None else self._tensors(test_data)
        # fused: one kernel for all parameters instead of a dozen ops each (~4x less time per
        # step on CPU at these sizes)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=spec.lr,
            weight_decay=spec.weight_decay,
            fused=self.device.type in ("cpu", "cuda") or None,
        )
        self.blocks = [m for m in self.model.modules() if isinstance(m, ODEBlock)]
        self.epoch = 0
        self.batch = 0
        self.history: list[dict[str, Any]] = []
        self._partial = _EpochSums()
        self._order: tuple[int, np.ndarray | None] = (-1, None)  # (epoch, its batch order)
        # the latest batch's loss and NFE (per-iteration curves read it in an `on_batch` hook)
        self.last_step: dict[str, float] = {}

    def _tensors(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.inputs(data.x)
        y = torch.as_tensor(data.y, device=self.device)
        if torch.is_floating_point(y):  # regression targets
            y = y.to(self.dtype)
        return x, y

    def inputs(self, x: np.ndarray) -> torch.Tensor:
        """Inputs as the model takes them: on its device, in its dtype."""
        return torch.as_tensor(x, device=self.device, dtype=self.dtype)

    @property
    def n_batches(self) -> int:
        return math.ceil(len(self._train[0]) / self.spec.batch_size)

    @property
    def iteration(self) -> int:
        """Batches trained so far (over all epochs)."""
        return self.epoch * self.n_batches + self.batch

    # -- one step --------------------------------------------------------------------------
    def _criterion(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "cross-entropy":
            return nn.functional.cross_entropy(out, y)
        return nn.functional.mse_loss(out, y.reshape(out.shape).to(out.dtype))

    def _nfe(self, which: str) -> int:
        return sum(getattr(b.last_stats, which) for b in self.blocks if b.last_stats is not None)

    def step(self) -> None:
        """Train on the next mini-batch, closing the epoch after its last batch."""
        x, y = self._train
        if self._order[0] != self.epoch:  # a permutation of 1k points costs as much as Adam's step
            self._order = (self.epoch, batch_order(self.spec.seed, self.epoch, len(x)))
        order = self._order[1]
        lo = self.batch * self.spec.batch_size
        idx = torch.as_tensor(order[lo : lo + self.spec.batch_size], device=self.device)
        start = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._criterion(self.model(x[idx]), y[idx])
        nfe_forward = self._nfe("nfe_forward")
        loss.backward()
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(self.epoch, self.batch, value)
        self.optimizer.step()
        nfe_backward = self._nfe("nfe_backward")
        self._partial.add(value, nfe_forward, nfe_backward, time.perf_counter() - start)
        self.last_step = {"loss": value, "nfe_forward": nfe_forward, "nfe_backward": nfe_backward}
        self.batch += 1
        if self.batch == self.n_batches:
            self._close_epoch()

    def _close_epoch(self) -> None:
        row = {"epoch": self.epoch + 1, **self._partial.means()}
        row.update(self.evaluate(self._train, "train"))
        if self._test is not None:
            row.update(self.evaluate(self._test, "test"))
        self.history.append(row)
        self.epoch += 1
        self.batch = 0
        self._partial = _EpochSums()

    def test_metrics(self) -> dict[str, float]:
        """`test_loss` (and `test_acc`) of the model on the test data now; empty without any."""
        return {} if self._test is None else self.evaluate(self._test, "test")

    @torch.no_grad()
    def evaluate(self, data: tuple[torch.Tensor, torch.Tensor], prefix: str) -> dict[str, float]:
        """Loss (and accuracy for classification) of the model on `data`, in eval mode."""
        x, y = data
        self.model.eval()
        # in chunks, so that large image sets (60k MNIST feature maps) fit in memory
        out = torch.cat([self.model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
        metrics = {f"{prefix}_loss": self._criterion(out, y).item()}
        if self.loss == "cross-entropy":
            metrics[f"{prefix}_acc"] = (out.argmax(dim=1) == y).double().mean().item()
        return metrics

    # -- the loop --------------------------------------------------------------------------
    def run(
        self,
        *,
        on_batch: Callable[[Trainer], None] | None = None,
        on_epoch: Callable[[Trainer, dict[str, Any]], None] | None = None,
        progress: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Train until `spec.epochs`; `on_batch`/`on_epoch` are called after each batch/epoch
        (a checkpoint hook); `progress=None` shows a bar only on a terminal."""
        total = self.spec.epochs * self.n_batches
        done = self.epoch * self.n_batches + self.batch
        disable = None if progress is None else not progress  # None: only on a terminal
        bar = tqdm(total=total, initial=done, disable=disable, unit="batch", leave=False)
        with torch_threads(self.spec.threads), bar:
            while self.epoch < self.spec.epochs:
                epoch = self.epoch
                self.step()
                bar.update(1)
                if on_batch is not None:
                    on_batch(self)
                if self.epoch != epoch:
                    row = self.history[-1]
                    bar.set_postfix(loss=f"{row['loss']:.3g}", nfe=f"{row['nfe_forward']:.0f}")
                    if on_epoch is not None:
                        on_epoch(self, row)
        return self.history

    # -- resume ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume at the current batch boundary."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "history": list(self.history),
            "partial": self._partial.as_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self.history = list(state["history"])
        self._partial = _EpochSums(**state["partial"])


class _EpochSums:
    """Running sums of the current epoch's batches."""

    def __init__(self, loss=0.0, nfe_forward=0.0, nfe_backward=0.0, seconds=0.0, batches=0):
        self.loss, self.nfe_forward, self.nfe_backward = loss, nfe_forward, nfe_backward
        self.seconds, self.batches = seconds, batches

    def add(self, loss: float, nfe_forward: int, nfe_backward: int, seconds: float) -> None:
        self.loss += loss
        self.nfe_forward += nfe_forward
        self.nfe_backward += nfe_backward
        self.seconds += seconds
        self.batches += 1

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))

    def means(self) -> dict[str, float]:
        n = max(self.batches, 1)
        return {
            "loss": self.loss / n,
            "nfe_forward": self.nfe_forward / n,
            "nfe_backward": self.nfe_backward / n,
            "seconds": self.seconds,
        }
