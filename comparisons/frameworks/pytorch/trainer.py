"""One training step of a case's model in PyTorch: :mod:`.model`'s ``nn.Sequential`` with ``torch.optim``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from comparisons.cases import Case

from ..layouts import linear_from_torch
from ..protocol import ADAM_EPS
from . import model as torch_model


class TorchTrainer:
    """``trainer(case, params, dtype, optimizer, lr)``: see :class:`comparisons.frameworks.protocol.Trainer`."""

    name = "torch"

    def __init__(self, case: Case, params: dict[str, np.ndarray], dtype: str, optimizer: str, lr: float) -> None:
        self.model = torch_model.build(case, params, dtype)
        self.opt = (torch.optim.Adam(self.model.parameters(), lr=lr, eps=ADAM_EPS) if optimizer == "adam"
                    else torch.optim.SGD(self.model.parameters(), lr=lr))

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        scores = self.model(torch.from_numpy(x))
        target = torch.from_numpy(y)
        loss = F.cross_entropy(scores, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item(), int((scores.argmax(1) == target).sum())

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(x)).numpy()

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters in the reference's layout (``nn.Linear.weight`` transposed back)."""
        out = {}
        for key, value in self.model.named_parameters():
            value = value.detach().numpy().copy()
            is_linear = isinstance(self.model[int(key.split(".")[0])], torch.nn.Linear)
            out[key] = linear_from_torch(value) if is_linear and key.endswith("weight") else value
        return out
