"""PyTorch's optimizers run on given gradients: the other side of the reference optimizers' parity tests."""

from __future__ import annotations

from tests.frameworks import import_or_skip


def run_torch(make, params: dict, grads: list[dict], clip=None) -> list[dict]:
    """``make(torch, tensors)``'s optimizer stepped once per entry of ``grads`` (name -> gradient) from ``params``;
    ``clip(torch, tensors)`` runs before each step when given. Returns the parameters after every step."""
    torch = import_or_skip("torch")
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = make(torch, list(tensors.values()))
    history = []
    for g in grads:
        for k, t in tensors.items():
            t.grad = torch.from_numpy(g[k].copy())
        if clip:
            clip(torch, list(tensors.values()))
        opt.step()
        history.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
    return history
