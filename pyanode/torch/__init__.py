"""The torch backend's modules: vector fields, the ODE block, models and the trainer.

`MODELS` (in `_models`) is the explicit table of model kind -> builder, one per kind of
`pyanode._names.MODEL_KINDS`.
"""

from pyanode.torch._adaptive import AdaptiveDepthBlock as AdaptiveDepthBlock
from pyanode.torch._adaptive import RescaledField as RescaledField
from pyanode.torch._conv import ConvField as ConvField
from pyanode.torch._conv import build_image_model as build_image_model
from pyanode.torch._conv import image_parameter_count as image_parameter_count
from pyanode.torch._conv import matched_filters as matched_filters
from pyanode.torch._depth_variant import AbstractBasis as AbstractBasis
from pyanode.torch._depth_variant import ChebyshevBasis as ChebyshevBasis
from pyanode.torch._depth_variant import DepthVariantField as DepthVariantField
from pyanode.torch._depth_variant import FourierBasis as FourierBasis
from pyanode.torch._depth_variant import GalerkinLinear as GalerkinLinear
from pyanode.torch._depth_variant import PiecewiseConstantBasis as PiecewiseConstantBasis
from pyanode.torch._depth_variant import basis_for as basis_for
from pyanode.torch._fields import MLPField as MLPField
from pyanode.torch._models import MODELS as MODELS
from pyanode.torch._models import build_model as build_model
from pyanode.torch._models import count_parameters as count_parameters
from pyanode.torch._models import flat_parameters as flat_parameters
from pyanode.torch._models import match_width as match_width
from pyanode.torch._models import set_flat_parameters as set_flat_parameters
from pyanode.torch._networks import Augment as Augment
from pyanode.torch._networks import NeuralODE as NeuralODE
from pyanode.torch._networks import NeuralODELayer as NeuralODELayer
from pyanode.torch._networks import ODEBlock as ODEBlock
from pyanode.torch._networks import ResNet as ResNet
from pyanode.torch._trainer import Trainer as Trainer
from pyanode.torch._trainer import available_device as available_device
from pyanode.torch._trainer import batch_order as batch_order
from pyanode.torch._trainer import torch_threads as torch_threads
