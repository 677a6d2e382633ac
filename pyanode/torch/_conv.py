"""Convolutional vector fields and the image NODE / ANODE of Dupont et al. (2019), §5.2."""

from __future__ import annotations

import torch
from torch import nn

from pyanode._errors import SpecError
from pyanode.specs import ModelSpec, SolverSpec
from pyanode.torch._fields import activation
from pyanode.torch._networks import Augment, NeuralODE, ODEBlock

IMAGE_KINDS = ("node", "anode")


class ConvField(nn.Module):
    """Convolutional vector field f(t, z) on feature maps z of shape (B, channels, H, W).

    Dupont et al., "Augmented Neural ODEs" (2019), App. E.1.2: 1 x 1 conv with `filters` filters
    -> act -> 3 x 3 conv (padding 1) with `filters` filters -> act -> 1 x 1 conv back to
    `channels`, with the time t appended as an extra constant channel before each convolution
    when `time_dependent`. For an ANODE `channels` counts the p augmented channels too.

    Arguments:
        channels: channels of the state (c + p).
        filters: k, the filters of the two hidden convolutions.
        act: activation name (one of `pyanode.specs.ACTIVATIONS`).
        time_dependent: append t as a channel before each convolution.
    """

    def __init__(self, channels: int, filters: int, *, act: str = "relu", time_dependent=True):
        super().__init__()
        self.channels = channels
        self.time_dependent = time_dependent
        extra = int(time_dependent)
        self.conv1 = nn.Conv2d(channels + extra, filters, kernel_size=1, padding=0)
        self.conv2 = nn.Conv2d(filters + extra, filters, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(filters + extra, channels, kernel_size=1, padding=0)
        self.act = activation(act)

    def _with_time(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if not self.time_dependent:
            return h
        plane = t.to(h.dtype).expand(h.shape[0], 1, *h.shape[2:])
        return torch.cat([h, plane], dim=1)

    def forward(self, t: torch.Tensor, z: torch.Tensor, args: object = None) -> torch.Tensor:
        h = self.act(self.conv1(self._with_time(t, z)))
        h = self.act(self.conv2(self._with_time(t, h)))
        return self.conv3(self._with_time(t, h))


def _check_image_spec(spec: ModelSpec, in_shape: tuple[int, ...], n_classes: int) -> None:
    if spec.kind not in IMAGE_KINDS:
        raise SpecError(
            f"model.kind={spec.kind!r} has no image (convolutional) builder; "
            f"accepted for images: {', '.join(IMAGE_KINDS)}"
        )
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise SpecError(f"in_shape must be (channels, height, width) of positive ints, got {shape}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise SpecError(f"n_classes must be an integer >= 1, got {n_classes!r}")


def build_image_model(
    spec: ModelSpec,
    in_shape: tuple[int, int, int],
    n_classes: int,
    solver: SolverSpec | None = None,
    *,
    seed: int | None = None,
) -> NeuralODE:
    """The image NODE or ANODE of Dupont et al. (2019), §5.2: an (augmented) ODE layer with a
    `ConvField`, then a linear layer on the flattened features.

    ANODE appends `spec.augment_dim` channels of zeros, (c, h, w) -> (c + p, h, w).

    Arguments:
        spec: `kind` "node" or "anode"; `hidden` is k, the filters of the conv field;
            `augment_dim` is p; `activation` and `time_dependent` as for the MLP field.
        in_shape: (c, h, w) of one image.
        n_classes: outputs of the linear layer.
        solver: the ODE solver spec (default `SolverSpec()`).
        seed: seeds the weight initialisation without touching the global RNG.

    Returns:
        A `NeuralODE` mapping (B, c, h, w) images to (B, n_classes) logits; its `features` are
        the (B, c + p, h, w) final states.

    Raises:
        SpecError: for a kind other than node / anode, or a malformed `in_shape` / `n_classes`.
    """
    _check_image_spec(spec, in_shape, n_classes)
    c, h, w = in_shape
    channels = c + spec.augment_dim

    def make() -> NeuralODE:
        field = ConvField(
            channels, spec.hidden, act=spec.activation, time_dependent=spec.time_dependent
        )
        input_map = Augment(spec.augment_dim) if spec.augment_dim else nn.Identity()
        output_map = nn.Sequential(nn.Flatten(), nn.Linear(channels * h * w, n_classes))
        return NeuralODE(input_map, ODEBlock(field, solver or SolverSpec()), output_map)

    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def image_parameter_count(spec: ModelSpec, in_shape: tuple[int, int, int], n_classes: int) -> int:
    """Trainable parameters of `build_image_model(spec, in_shape, n_classes)`, in closed form.

    With s = c + p state channels, k filters and e = 1 time channel (0 if not time dependent):
    (s + e) k + k  +  9 (k + e) k + k  +  (k + e) s + s  +  s h w n_classes + n_classes.

    Raises:
        SpecError: as `build_image_model`.
    """
    _check_image_spec(spec, in_shape, n_classes)
    c, h, w = in_shape
    s, k, e = c + spec.augment_dim, spec.hidden, int(spec.time_dependent)
    field = (s + e) * k + k + 9 * (k + e) * k + k + (k + e) * s + s
    return field + s * h * w * n_classes + n_classes


def matched_filters(
    spec: ModelSpec,
    n_parameters: int,
    in_shape: tuple[int, int, int],
    n_classes: int,
    *,
    max_filters: int = 4096,
) -> int:
    """The number of filters k for which `spec` (with `hidden=k`) has the parameter count
    closest to `n_parameters` (the smaller k on a tie).

    Dupont et al. (2019), App. E.2.2 / Fig. 14 compare a NODE and an ANODE "with the same number
    of parameters" this way: on MNIST a NODE with 92 filters (84395 parameters) against an ANODE
    with 64 filters and 5 augmented channels (84816).

    Raises:
        SpecError: for `n_parameters` < 1, or as `build_image_model`.
    """
    if isinstance(n_parameters, bool) or not isinstance(n_parameters, int) or n_parameters < 1:
        raise SpecError(f"n_parameters must be an integer >= 1, got {n_parameters!r}")
    gaps = [
        abs(image_parameter_count(spec.replace(hidden=k), in_shape, n_classes) - n_parameters)
        for k in range(1, max_filters + 1)
    ]
    return 1 + min(range(len(gaps)), key=gaps.__getitem__)
