"""Exception types of pyanode: one place, so every layer raises the same ones."""


class SpecError(ValueError):
    """A model, solver or training spec has an unknown name or an impossible value."""


class DataError(ValueError):
    """A dataset, a generator argument or a data file has an impossible value or shape."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (an exploding vector field or learning rate)."""

    def __init__(self, epoch: int, batch: int, loss: float):
        self.epoch, self.batch, self.loss = epoch, batch, loss
        super().__init__(
            f"training diverged: loss={loss} at epoch {epoch}, batch {batch}; "
            "lower train.lr or the solver tolerances"
        )
