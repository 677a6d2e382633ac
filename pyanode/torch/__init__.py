"""The torch backend's modules: vector fields, the ODE block, models and the trainer."""

from pyanode.torch._blocks import Augment as Augment
from pyanode.torch._blocks import ODEBlock as ODEBlock
from pyanode.torch._fields import MLPField as MLPField
from pyanode.torch._models import MODELS as MODELS
from pyanode.torch._models import NeuralODE as NeuralODE
from pyanode.torch._models import build_model as build_model
from pyanode.torch._models import count_parameters as count_parameters
from pyanode.torch._models import flat_parameters as flat_parameters
from pyanode.torch._models import register as register
from pyanode.torch._models import set_flat_parameters as set_flat_parameters
from pyanode.torch._resnet import ResNet as ResNet
from pyanode.torch._trainer import Trainer as Trainer
from pyanode.torch._trainer import batch_order as batch_order
