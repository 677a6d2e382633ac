"""How a vector field is called: `f(t, y, args)` (pyanode, diffrax), `f(t, y)` (torchdiffeq,
torchdyn) or `f(y)` (torchdyn, an `nn.Sequential`), told apart once per field from its
signature, never per call.

Inside, every field is called as `f(t, y, args)`: a field of another shape is wrapped in an
adapter that drops what it does not take; the adapter is a module holding the field, so the
parameters of a module field are the adapter's and get gradients under every gradient method.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

from torch import nn

SHAPES = ("t, y, args", "t, y", "y")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_TIME_NAMES = ("t", "time", "s", "tau")

# signatures are read once per function (its code) or per module class
_SHAPE_OF: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# the adapter of a field, made once per field object
_ADAPTERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def field_shape(f: Any) -> str:
    """How `f` takes its arguments: one of `SHAPES`, read from its signature.

    Read from the required positional parameters (for an `nn.Module`, those of its `forward`):
    three (or `*args`, or an optional third one named `args`) mean `f(t, y, args)`, two
    `f(t, y)`, one `f(y)`; optional parameters beyond those keep their defaults.

    **Raises:** `TypeError` for a field that is not callable, whose signature cannot be read
    or that fits none of the shapes (with the fix), or that looks like scipy's `f(y, t)`.
    """
    if not callable(f):
        raise TypeError(f"the vector field must be callable, got {type(f).__name__}")
    target = f.forward if isinstance(f, nn.Module) else f
    key = _cache_key(f, target)
    if key is not None:
        found = _SHAPE_OF.get(key)
        if found is not None:
            return found
    shape = _read_shape(f, target)
    if key is not None:
        _SHAPE_OF[key] = shape
    return shape


def _cache_key(f: Any, target: Any) -> Any:
    """What the signature depends on: the module's class, or the function's code object."""
    if isinstance(f, nn.Module):
        return type(f)
    func = getattr(target, "__func__", target)  # a bound method: its function
    code = getattr(func, "__code__", None)
    if code is not None and not getattr(func, "__defaults__", None):
        return code
    return None  # partials, callable objects, defaults: read each time (cheap enough)


def _read_shape(f: Any, target: Any) -> str:
    name = getattr(f, "__name__", type(f).__name__)
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(
            f"cannot read the signature of the vector field {name}; wrap it as "
            "lambda t, y, args: ... (or lambda t, y: ...)"
        ) from None
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return "t, y, args"
    positional = [p for p in params if p.kind in _POSITIONAL]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if len(required) > 3 or not positional:
        raise TypeError(
            f"the vector field {name} takes {len(required)} required positional arguments "
            f"({', '.join(p.name for p in required)}); it is called as f(t, y, args), "
            "f(t, y) or f(y)"
        )
    if len(required) == 3 or (len(positional) >= 3 and positional[2].name == "args"):
        return "t, y, args"
    taken = positional[: max(len(required), 1)]  # optional parameters keep their defaults
    if len(taken) == 2:
        first, second = (p.name for p in taken)
        if second in _TIME_NAMES and first not in _TIME_NAMES:
            raise TypeError(
                f"the vector field {name}({first}, {second}) looks like scipy's f(y, t); "
                f"pyanode calls f(t, y): swap the arguments, or wrap it as lambda t, y: "
                f"{name}(y, t)"
            )
    return "t, y" if len(taken) == 2 else "y"


def as_field(f: Any) -> Any:
    """`f` as a field called `f(t, y, args)`: `f` itself when it takes those, else its adapter
    (made once per field).

    **Raises:** `TypeError` as `field_shape`.
    """
    shape = field_shape(f)
    if shape == "t, y, args":
        return f
    try:
        adapter = _ADAPTERS.get(f)
    except TypeError:  # not weakly referenceable: adapt at each call
        return _Adapter(f, shape)
    if adapter is None:
        adapter = _ADAPTERS[f] = _Adapter(f, shape)
    return adapter


class _Adapter(nn.Module):
    """A field of shape `(t, y)` or `(y)` called as `f(t, y, args)` (`args` dropped).

    A module, so that the parameters of a module field are its own (a plain function has none:
    its tensors are found from its graph, as for any closure).
    """

    def __init__(self, field: Any, shape: str):
        super().__init__()
        self.field, self.takes_t = field, shape == "t, y"

    def __call__(self, t, y, args):  # no module hooks here: the field's own call has them
        return self.field(t, y) if self.takes_t else self.field(y)
