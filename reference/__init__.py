"""Pure-numpy reference layers for CNNs, with the tutorial's ``forward``/``backward`` interface.

Channels-first throughout: images ``(C, H, W)`` or batches ``(N, C, H, W)``,
conv weights ``(F, C, kh, kw)``, linear weights ``(in, out)``.
"""

from .activations import GELU, Hardsigmoid, LeakyReLU, ReLU, Sigmoid, Tanh
from .adaptive import AdaptiveAvgPool2d, AdaptiveMaxPool2d, GlobalMaxPool2d
from .adaptive_optim import Adagrad, AdamW, RMSprop
from .binary_losses import binary_cross_entropy, binary_cross_entropy_with_logits
from .clipping import clip_grad_norm, clip_grad_value
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .data import DataError, load_dataset, read_idx
from .dropout import Dropout
from .global_pool import GlobalAvgPool2d
from .gradcheck import gradient_errors, max_rel_error, numerical_gradient, rel_error
from .layer import Layer
from .linear import Flatten, Linear
from .losses import log_softmax, softmax_cross_entropy
from .model import Sequential
from .normalization import BatchNorm2d
from .optim import SGD, Adam
from .pool import AvgPool2d, MaxPool2d
from .sample_norm import GroupNorm, LayerNorm
from .softmax import Softmax
from .threads import get_num_threads, set_num_threads
from .upsample import Upsample

__all__ = [
    "get_num_threads",
    "set_num_threads",
    "Adagrad",
    "AdamW",
    "ConvTranspose2d",
    "GELU",
    "GroupNorm",
    "Hardsigmoid",
    "LayerNorm",
    "RMSprop",
    "Softmax",
    "Upsample",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "clip_grad_norm",
    "clip_grad_value",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "GlobalMaxPool2d",
    "Adam",
    "DataError",
    "SGD",
    "load_dataset",
    "read_idx",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "Layer",
    "LeakyReLU",
    "gradient_errors",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "log_softmax",
    "max_rel_error",
    "numerical_gradient",
    "rel_error",
    "softmax_cross_entropy",
]
