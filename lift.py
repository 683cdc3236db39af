"""LIFT: linear-fitting-based knowledge distillation, coarse to fine.

Han, Yeo, Yoo. "LIFT and PLACE", CVPR 2026 (arXiv 2605.19729), Sec. 3.2 (LIFT).

The teacher's output is fitted as an affine function of the student's output over a group of elements,

    eps_t ~= b0 + b1 * eps_s,     b1 = cov(eps_s, eps_t) / (var(eps_s) + eps),   b0 = mean(eps_t) - b1 * mean(eps_s)

and the distillation error is split in two (perfect distillation is b0 = 0, b1 = 1):

    L_coarse = |b0| + |b1 - 1|                                 (mean and scale mismatch)
    L_fine   = || eps_t - (b0 + b1 * eps_s) ||^2                (what an affine correction cannot explain;
                                                                 b0, b1 are constants here)
    L_LIFT   = L_coarse + w * L_fine,   w = 1 - min(1, L_coarse)  (w a constant: the curriculum)

In LIFT a group is one (sample, channel) over all its spatial positions; PLACE (place.py) cuts it into
error-ranked groups of K elements and combines them with the same `grouped_loss` below.

Scales. reduction="mean": per sample, mean over groups of coarse_g + w * mean over elements of fine, then the
batch mean. reduction="sum" (the released DDPM code): per sample, K * sum over groups of coarse_g
+ w * sum over elements of fine, then the batch mean. With G groups of K elements per sample, G * K = C * H * W,
so "sum" is exactly C * H * W times "mean" (for LIFT and PLACE alike, and for OutKD).

Speed. `grouped_loss` computes the loss in one pass over centred statistics and returns the gradient in closed
form (`_LiftFunction.backward`, derived below): the gradient of every element is affine in its centred student and
teacher values with per-group coefficients. `grouped_loss_plain` is the same math written with autograd; the tests
check both agree in float64.
"""
from dataclasses import dataclass

import torch

COARSE = ("l1", "l2")
WEIGHTING = ("adaptive", "constant", "coarse", "fine")
REDUCTION = ("mean", "sum")


@dataclass
class KDLoss:
    """The scalar to backpropagate and detached diagnostics for the log (means over all groups)."""
    loss: torch.Tensor
    coarse: torch.Tensor = None      # mean over groups of coarse_g (the chosen l1/l2 form)
    fine: torch.Tensor = None        # mean over elements of the squared residual
    weight: torch.Tensor = None      # w actually used
    slope: torch.Tensor = None       # mean b1
    intercept: torch.Tensor = None   # mean b0


def check_options(reduction, coarse="l1", weighting="adaptive"):
    """Raise a ValueError naming the first unknown option."""
    for name, value, allowed in (("reduction", reduction, REDUCTION), ("coarse", coarse, COARSE),
                                 ("weighting", weighting, WEIGHTING)):
        if value not in allowed:
            raise ValueError(f"unknown {name}={value!r}; expected one of {', '.join(allowed)}")


def check_pair(eps_s, eps_t):
    """Raise a ValueError unless eps_s and eps_t are (B, C, *spatial) tensors of the same shape."""
    if eps_s.shape != eps_t.shape:
        raise ValueError(f"student and teacher outputs differ in shape: {tuple(eps_s.shape)} vs {tuple(eps_t.shape)}")
    if eps_s.dim() < 3:
        raise ValueError(f"expected outputs of shape (B, C, *spatial), got {tuple(eps_s.shape)}")


def linear_fit(eps_s, eps_t, eps=1e-7):
    """Least squares eps_t ~= b0 + b1 * eps_s over the last dimension, batched over the leading ones (Sec. 3.2)."""
    mean_s, mean_t = eps_s.mean(-1), eps_t.mean(-1)
    ds, dt = eps_s - mean_s.unsqueeze(-1), eps_t - mean_t.unsqueeze(-1)
    var = (ds * ds).mean(-1)                 # population variance of eps_s
    cov = (ds * dt).mean(-1)
    b1 = cov / (var + eps)                   # slope
    b0 = mean_t - b1 * mean_s                # intercept
    return b0, b1


def _scales(shape, reduction, weighting):
    """Factors (s_c, s_f) with loss = s_c * sum_g coarse_g + s_f * w * sum_elements fine, over the whole batch."""
    B, C, G, K = shape
    if reduction == "mean":                  # per sample: mean over C*G groups, mean over C*G*K elements
        s_c, s_f = 1.0 / (B * C * G), 1.0 / (B * C * G * K)
    else:                                    # per sample: K * sum over groups, sum over elements
        s_c, s_f = K / B, 1.0 / B
    return (0.0 if weighting == "fine" else s_c), (0.0 if weighting == "coarse" else s_f)


def _weight(coarse_l1_mean, weighting):
    """w = 1 - min(1, mean coarse error), a constant (Sec. 3.2); 1 or 0 for the ablations."""
    if weighting == "adaptive":
        return 1.0 - coarse_l1_mean.clamp(max=1.0)
    return coarse_l1_mean.new_tensor(0.0 if weighting == "coarse" else 1.0)


def grouped_loss_plain(s, t, reduction="mean", coarse="l1", weighting="adaptive", eps=1e-7):
    """The LIFT loss of grouped outputs (B, C, G, K), written as the paper's equations with autograd."""
    check_options(reduction, coarse, weighting)
    dtype = torch.float64 if s.dtype == torch.float64 else torch.float32   # fp16/bf16 are computed in float32
    s, t = s.to(dtype), t.detach().to(dtype)
    b0, b1 = linear_fit(s, t, eps)                                      # (B, C, G)
    l1 = b0.abs() + (b1 - 1).abs()
    coarse_g = l1 if coarse == "l1" else b0 ** 2 + (b1 - 1) ** 2      # L_coarse per group
    fine = (t - (b0.detach().unsqueeze(-1) + b1.detach().unsqueeze(-1) * s)) ** 2   # L_fine per element
    w = _weight(l1.detach().mean(), weighting)
    s_c, s_f = _scales(s.shape, reduction, weighting)
    loss = s_c * coarse_g.sum() + s_f * w * fine.sum()
    return KDLoss(loss, coarse_g.detach().mean(), fine.detach().mean(), w, b1.detach().mean(), b0.detach().mean())


class _LiftFunction(torch.autograd.Function):
    """LIFT loss of grouped outputs with a closed-form backward to the student (the teacher gets none).

    Per group of K elements with centred values ds_k = s_k - mean(s), dt_k = t_k - mean(t), v = var(s):
        d b1 / d s_k = (dt_k - 2 b1 ds_k) / (K (v + eps))        d b0 / d s_k = -b1 / K - mean(s) * d b1 / d s_k
        d L_fine / d s_k = -2 b1 r_k,   r_k = t_k - b0 - b1 s_k = dt_k - b1 ds_k
    so with loss = s_c * sum coarse_g + s_f * w * sum fine and g0, g1 = d coarse_g / d b0, d b1:
        grad_k = c0 + c_t * dt_k + c_s * ds_k,   P = s_c (g1 - g0 mean(s)) / (K (v + eps)),  Q = 2 s_f w b1,
        c0 = -s_c g0 b1 / K,   c_t = P - Q,   c_s = b1 (Q - 2 P).
    """

    @staticmethod
    def forward(ctx, s, t, reduction, coarse, weighting, eps):
        K = s.shape[-1]
        mean_s, mean_t = s.mean(-1, keepdim=True), t.mean(-1, keepdim=True)   # (B, C, G, 1)
        ds, dt = s - mean_s, t - mean_t                                         # (B, C, G, K)
        var = torch.linalg.vecdot(ds, ds).unsqueeze(-1) / K                    # population variance of eps_s
        b1 = torch.linalg.vecdot(ds, dt).unsqueeze(-1) / K / (var + eps)       # slope = cov / (var + eps)
        b0 = mean_t - b1 * mean_s                                               # intercept
        l1 = b0.abs() + (b1 - 1).abs()
        coarse_g = l1 if coarse == "l1" else b0.pow(2) + (b1 - 1).pow(2)       # L_coarse per group
        r = torch.addcmul(dt, b1, ds, value=-1).view(-1)                        # residual t - b0 - b1 s
        fine_sum = torch.dot(r, r)                                              # sum of L_fine
        w = _weight(l1.mean(), weighting)
        s_c, s_f = _scales(s.shape, reduction, weighting)
        loss = s_c * coarse_g.sum() + s_f * w * fine_sum
        if coarse == "l1":
            g0, g1 = b0.sign(), (b1 - 1).sign()                                 # d coarse_g / d b0, d b1
        else:
            g0, g1 = 2 * b0, 2 * (b1 - 1)
        P = s_c * (g1 - g0 * mean_s) / (K * (var + eps))
        Q = 2 * s_f * w * b1
        ctx.save_for_backward(ds, dt, -s_c * g0 * b1 / K, P - Q, b1 * (Q - 2 * P))
        stats = [coarse_g.mean(), fine_sum / s.numel(), w, b1.mean(), b0.mean()]
        ctx.mark_non_differentiable(*stats)
        return (loss, *stats)

    @staticmethod
    def backward(ctx, grad_loss, *unused):
        ds, dt, c0, c_t, c_s = ctx.saved_tensors
        c0, c_t, c_s = c0 * grad_loss, c_t * grad_loss, c_s * grad_loss         # per group, cheap
        return torch.addcmul(torch.addcmul(c0, c_t, dt), c_s, ds), None, None, None, None, None


def grouped_loss(s, t, reduction="mean", coarse="l1", weighting="adaptive", eps=1e-7):
    """The LIFT loss of grouped outputs (B, C, G, K): one fit per group, combined over all groups (fast path)."""
    check_options(reduction, coarse, weighting)
    if s.shape[-1] < 2:
        raise ValueError(f"a group needs at least 2 elements to fit b0, b1, got {s.shape[-1]}")
    dtype = torch.float64 if s.dtype == torch.float64 else torch.float32   # fp16/bf16 are computed in float32
    return KDLoss(*_LiftFunction.apply(s.to(dtype), t.detach().to(dtype), reduction, coarse, weighting, eps))


def lift_loss(eps_s, eps_t, *, reduction="mean", coarse="l1", weighting="adaptive", eps=1e-7):
    """LIFT (Sec. 3.2): one fit per (sample, channel) over all spatial positions of eps_s (B, C, *spatial)."""
    check_pair(eps_s, eps_t)
    B, C = eps_s.shape[:2]
    return grouped_loss(eps_s.reshape(B, C, 1, -1), eps_t.reshape(B, C, 1, -1), reduction, coarse, weighting, eps)


def outkd_loss(eps_s, eps_t, *, reduction="mean"):
    """Conventional output KD: squared error, mean over elements or sum per sample, then the batch mean."""
    check_pair(eps_s, eps_t)
    check_options(reduction)
    dtype = torch.float64 if eps_s.dtype == torch.float64 else torch.float32
    sse = torch.nn.functional.mse_loss(eps_s.to(dtype), eps_t.detach().to(dtype), reduction="sum")
    loss = sse / eps_s.numel() if reduction == "mean" else sse / eps_s.shape[0]
    return KDLoss(loss, fine=sse.detach() / eps_s.numel())
