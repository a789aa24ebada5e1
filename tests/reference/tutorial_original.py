"""The tutorial's code as published (../shared/tutorial.md), kept only to prove the regression tests
catch its defects. Never used by the package. Two-space indentation and names kept as published."""

import numpy as np


class Conv:
  def __init__(self, in_channels, out_channels, filter_size, pad=0, stride=1, weight_scale=1e-3):
    self.pad = pad
    self.stride = stride
    self.filters = np.random.randn(out_channels, in_channels, filter_size, filter_size) * weight_scale
    self.bias = np.zeros((out_channels, ))

  def calc_output_dim(self, x):
    _, H, W = x.shape
    _, _, filter_height, filter_width = self.filters.shape
    H_out = 1 + (H + 2 * self.pad - filter_height) // self.stride
    W_out = 1 + (W + 2 * self.pad - filter_width) // self.stride
    return H_out, W_out

  def iterate_regions(self, x):
    H_out, W_out = self.calc_output_dim(x)
    F, C, filter_height, filter_width = self.filters.shape
    for i in range(H_out):
      for j in range(W_out):
        x_region = x[:, i * self.stride: i * self.stride + filter_height, j * self.stride: j * self.stride + filter_width]
        yield i, j, x_region

  def forward(self, x):
    self.x = x
    _, H, W = x.shape
    F, _, _, _ = self.filters.shape
    x_pad = np.pad(x, self.pad, mode='constant')
    H_out, W_out = self.calc_output_dim(x)
    out = np.zeros((F, H_out, W_out))
    for f in range(F):
      kernel = self.filters[f]
      for i, j, x_region in self.iterate_regions(x_pad):
        out[f, i, j] = (x_region * kernel).sum()
      out[f] += self.bias[f]
    return out


def maxpool_backward_assigning(x, dout, size, stride):
  """The tutorial's MaxPool2x2.backward with the window size and stride made parameters
  (its 2 and 2), the assignment ``dx[...][max_r, max_c] = dout[c, i, j]`` kept."""
  C, H, W = x.shape
  dx = np.zeros_like(x)
  for c in range(C):
    for i in range(dout.shape[1]):
      for j in range(dout.shape[2]):
        window = x[c, i*stride:i*stride + size, j*stride:j*stride + size]
        max_idx = np.argmax(window)
        max_r = max_idx // window.shape[1]
        max_c = max_idx % window.shape[1]
        dx[c, i*stride:i*stride+size, j*stride:j*stride+size][max_r, max_c] = dout[c, i, j]
  return dx
