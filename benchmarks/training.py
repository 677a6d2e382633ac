"""Training epochs side by side: the same data, weights, batches and optimiser in every library.

The libraries take turns epoch by epoch (the order rotates every epoch) inside one process, so a
change of machine load hits all of them alike; each keeps its own weights and Adam state, and all
see the same batches (`pyanode.torch.batch_order`). Epoch 0 is a warm-up and the NFE count (its
hooks cost time), epochs 1..N are timed, and the accuracy is measured after epoch N.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import torch
from torch import nn

from benchmarks._timing import Samples, Stopwatch, device_sync
from benchmarks.memory import peak_mib, training_step
from benchmarks.peers import Contender, contenders
from pyanode import SolverSpec
from pyanode.data import Dataset, concentric_spheres, three_spheres
from pyanode.torch import batch_order


@dataclass(frozen=True)
class Config:
    """One training configuration of the benchmark."""

    dataset: str  # "three-spheres" | "concentric-spheres"
    kind: str  # "node" | "anode"
    gradient: str  # "backprop" | "adjoint"

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.gradient}/{self.dataset}"


@dataclass
class Result:
    """What one library did on one configuration (times in seconds)."""

    library: str
    epochs: Samples = field(default_factory=Samples)  # one training epoch
    solves: Samples = field(default_factory=Samples)  # one batch's forward + loss + backward
    nfe_first: tuple[float, float] = (0.0, 0.0)  # forward/backward per batch, epoch 0
    nfe_last: tuple[float, float] = (0.0, 0.0)  # the same with the final weights
    nfe_timed: list[float] = field(default_factory=list)  # forward NFE per batch, timed epochs
    train_acc: float = 0.0
    test_acc: float = 0.0
    peak_mb: float | None = None  # MiB of one batch's forward + backward (memory.peak_mib)
    compile_s: float | None = None  # diffrax: compiling the training step, all batch shapes


def datasets(name: str, points: int, seed: int) -> tuple[Dataset, Dataset]:
    """Train and test sets of `points` points each (2-D), from seeds `seed` and `seed + 1`."""
    if name == "three-spheres":
        return three_spheres(n=points, seed=seed), three_spheres(n=points, seed=seed + 1)
    if name == "concentric-spheres":
        inner = points // 3

        def make(s):
            return concentric_spheres(n_inner=inner, n_outer=points - inner, seed=s)

        return make(seed), make(seed + 1)
    raise ValueError(f"unknown dataset {name!r}; accepted: 'three-spheres', 'concentric-spheres'")


class _Run:
    """One contender's training state."""

    def __init__(self, contender: Contender, lr: float, fused_adam: bool, device: torch.device):
        self.c = contender
        self.model = contender.model.to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, fused=fused_adam or None)
        self.result = Result(contender.library)

    def epoch(self, batches, sync, *, count: bool) -> None:
        """One epoch; timed unless `count` (then the VJPs are counted, which costs time)."""
        model, opt, counter = self.model, self.opt, self.c.counter
        counter.enabled = count
        counter.reset()
        sync()
        with Stopwatch() as epoch:
            for xb, yb in batches:
                with Stopwatch() as solve:
                    opt.zero_grad(set_to_none=True)
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    counter.in_backward = True
                    loss.backward()
                    counter.in_backward = False
                    sync()
                if not count:
                    self.result.solves.add(solve.wall, solve.cpu)
                opt.step()
                loss.item()
            sync()
        _flush(model)
        if count:
            counter.enabled = False
        else:
            self.result.epochs.add(epoch.wall, epoch.cpu)
            self.result.nfe_timed.append(counter.forward / len(batches))

    def compile(self, batches) -> None:
        """Nothing to compile: torch runs eagerly (diffrax's runs compile here)."""

    def record_first(self, batches: int) -> None:
        """Keep the NFE per batch counted in the warm-up epoch."""
        counter = self.c.counter
        self.result.nfe_first = (counter.forward / batches, counter.backward / batches)

    def count_nfe(self, batches) -> tuple[float, float]:
        """NFE per batch of forward + backward on `batches`, without updating the weights."""
        counter = self.c.counter
        counter.reset()
        counter.enabled = True
        for xb, yb in batches:
            loss = nn.functional.cross_entropy(self.model(xb), yb)
            counter.in_backward = True
            loss.backward()
            counter.in_backward = False
        _flush(self.model)
        counter.enabled = False
        self.opt.zero_grad(set_to_none=True)
        return counter.forward / len(batches), counter.backward / len(batches)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((self.model(x).argmax(dim=1) == y).double().mean())


def _flush(model: nn.Module) -> None:
    flush = getattr(model, "flush", None)
    if flush is not None:
        flush()


def compare(
    config: Config,
    *,
    epochs: int,
    points: int,
    batch_size: int,
    hidden: int,
    augment_dim: int,
    rtol: float,
    atol: float,
    lr: float,
    fused_adam: bool,
    seed: int,
    device: torch.device,
    libraries: tuple[str, ...],
    memory: bool = True,
) -> list[Result]:
    """Train every library on `config` for `epochs` timed epochs after one warm-up epoch; with
    `memory`, measure the peak memory of one batch's forward + backward after training."""
    train, test = datasets(config.dataset, points, seed)
    classes = int(train.y.max()) + 1
    solver = SolverSpec(solver="dp5", rtol=rtol, atol=atol, gradient=config.gradient)
    aug = augment_dim if config.kind == "anode" else 0
    dim = train.x.shape[1]
    torch_libraries = tuple(lib for lib in libraries if lib != "diffrax")
    runs: list = [
        _Run(c, lr, fused_adam, device)
        for c in contenders(config.kind, aug, hidden, dim, classes, solver, seed, torch_libraries)
    ]
    if "diffrax" in libraries:  # JAX on the CPU, from the same initial weights
        from benchmarks.diffrax_peer import TrainRun

        model = contenders(config.kind, aug, hidden, dim, classes, solver, seed, ("pyanode",))
        runs.append(TrainRun(model[0].model.inner, aug, config.gradient, rtol, atol, lr,
                             Result("diffrax")))  # fmt: skip
    x = torch.as_tensor(train.x, device=device)
    y = torch.as_tensor(train.y, device=device)
    sync = device_sync(device)
    # the collector would otherwise rescan every imported library's objects while timing
    gc.collect()
    gc.freeze()
    for epoch in range(epochs + 1):
        order = torch.as_tensor(batch_order(seed, epoch, len(x)), device=device)
        batches = [
            (x[order[i : i + batch_size]], y[order[i : i + batch_size]])
            for i in range(0, len(x), batch_size)
        ]
        if epoch == 0:
            for run in runs:
                run.compile(batches)
        turn = runs[epoch % len(runs) :] + runs[: epoch % len(runs)]
        for run in turn:
            if epoch == 0:
                run.epoch(batches, sync, count=True)
                run.record_first(len(batches))
            else:
                run.epoch(batches, sync, count=False)
    x_test = torch.as_tensor(test.x, device=device)
    y_test = torch.as_tensor(test.y, device=device)
    for run in runs:
        run.result.train_acc = run.accuracy(x, y)
        run.result.test_acc = run.accuracy(x_test, y_test)
        run.result.nfe_last = run.count_nfe(batches)
        if memory and isinstance(run, _Run):
            step = training_step(run.model, *batches[0])
            run.result.peak_mb = peak_mib(step, device)
    return [run.result for run in runs]
