"""Named experiments, trials from specs, and the results store."""

from pyanode.experiments._run import RunResult as RunResult
from pyanode.experiments._run import load_split as load_split
from pyanode.experiments._run import run as run
