"""Model builders and the flat-parameter helpers (the names the Julia conformance tests use)."""

from pyanode.torch._models import build_model as build_model
from pyanode.torch._models import count_parameters as count_parameters
from pyanode.torch._models import flat_parameters as flat_parameters
from pyanode.torch._models import set_flat_parameters as set_flat_parameters
