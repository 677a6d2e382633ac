"""Named experiments, trials from specs, and the results store."""

from pyanode.experiments._run import RunResult as RunResult
from pyanode.experiments._run import load_split as load_split
from pyanode.experiments._run import run as run
from pyanode.experiments.collect import collect as collect
from pyanode.experiments.sweep import Sweep as Sweep
from pyanode.experiments.sweep import load_sweep as load_sweep
from pyanode.experiments.sweep import run_sweep as run_sweep
from pyanode.experiments.trial import run_trial as run_trial
