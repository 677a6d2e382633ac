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

    def __reduce__(self):
        return (type(self), (self.epoch, self.batch, self.loss))


class SolverError(RuntimeError):
    """An ODE solve failed: step budget spent, step size underflow or a non-finite state.

    Arguments:
        reason: one of `SOLVER_FAILURES`: `"max_steps"`, `"dt_underflow"` or `"nonfinite"`.
        t: the time the solver had reached.
        dt: the step size it was trying.
        nfe: vector-field evaluations spent so far.
        message: what happened and the fix; defaults to `SOLVER_FAILURES[reason]`.
    """

    def __init__(self, reason: str, t: float, dt: float, nfe: int, message: str | None = None):
        self.reason, self.t, self.dt, self.nfe = reason, t, dt, nfe
        self.message = SOLVER_FAILURES.get(reason, reason) if message is None else message
        super().__init__(f"{self.message} (reason={reason!r}, t={t:.6g}, dt={dt:.3g}, nfe={nfe})")

    def __reduce__(self):
        # Rebuild from the fields, so that the error survives pickling (worker processes).
        return (type(self), (self.reason, self.t, self.dt, self.nfe, self.message))


SOLVER_FAILURES = {
    "max_steps": "the solver took max_steps steps without reaching t1: increase max_steps, loosen "
    "rtol/atol, or check for a stiff or exploding vector field",
    "dt_underflow": "the step size fell below dtmin: the solution is probably blowing up (a "
    "finite-time singularity) or the problem is stiff; check the vector field or loosen rtol/atol",
    "nonfinite": "the state or the error estimate became NaN or infinite: the vector field is "
    "exploding or returned NaN; check the vector field, its weights and the initial state",
}


class JuliaUnavailable(RuntimeError):
    """The Julia backend cannot be used here; the message names the reason and the fix.

    Raised by `pyanode.julia.load()` / `install()` and by `backend="julia"`; `backend="auto"`
    falls back to torch instead. See docs/julia.md.
    """


class FolderError(SpecError):
    """A trial folder cannot be used for the trial asked for: a file there is damaged, belongs
    to another trial, or is not a pyanode trial's. The message names the file and the fix; a
    batch reports such a trial and goes on with the others."""


class StoreError(OSError):
    """Writing to the results store failed (disk full, quota, read-only or failing disk). Not
    the trial's failure: the trial stays unfinished, and running the same command again (once
    the disk is fixed) resumes it from its last checkpoint."""
