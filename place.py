"""PLACE: piecewise local adaptive coefficient estimation.

Han, Yeo, Yoo. "LIFT and PLACE", CVPR 2026 (arXiv 2605.19729), Sec. 3.3 (PLACE).

The distillation error is spatially non-uniform, so one fit per (sample, channel) is too coarse. PLACE ranks the
elements of each (sample, channel) by their squared error (eps_t - eps_s)^2, cuts the ranked list into consecutive
groups of K elements (K = 16 in every table of the paper), fits b0, b1 per group and combines the groups exactly
as LIFT does (lift.grouped_loss). No parameters are added and inference is unchanged. With K = H * W it is LIFT.
"""
import torch

from lift import check_options, check_pair, grouped_loss


def check_group_size(n, group_size):
    """Raise a ValueError unless group_size >= 2 divides the n spatial elements of a (sample, channel)."""
    if not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2 (a line needs two points), got {group_size!r}")
    if n % group_size:
        divisors = [k for k in range(2, n + 1) if n % k == 0]
        shown = ", ".join(map(str, divisors[:12])) + (", ..." if len(divisors) > 12 else "")
        raise ValueError(f"group_size={group_size} does not divide the {n} spatial elements; "
                         f"sizes that divide: {shown}")


def rank_by_error(eps_s, eps_t):
    """Per row of (R, N), the element indices sorted by squared error, ascending; ties by index (no gradient).

    Equal to torch.sort(err, dim=-1, stable=True).indices, but faster: a non-negative float32's bits, read as an
    integer, sort like the float, so one 1-D sort of the int64 keys (row << 31) | bits orders every row at once,
    and for 1-D integer keys PyTorch uses a radix sort (passes over the bytes the keys use), where a 2-D float sort
    compares. float64 inputs are ranked in float64 by the plain sort.
    """
    with torch.no_grad():
        if eps_s.dtype == torch.float64:
            return torch.sort((eps_t - eps_s).pow_(2), dim=-1, stable=True).indices
        R, N = eps_s.shape
        err = (eps_t.float() - eps_s.float()).pow_(2)                       # >= 0, so bits are monotone
        rows = torch.arange(R, device=err.device).unsqueeze(1)
        key = err.view(torch.int32).long() | (rows << 31)                    # (R, N), row in the high bits
        order = torch.sort(key.view(-1), stable=True).indices.view(R, N)     # positions in the flat (R*N) list
        return order - rows * N


class _Permute(torch.autograd.Function):
    """x.gather(-1, idx) for a permutation idx; its backward is a scatter, not a zero-fill plus scatter_add."""

    @staticmethod
    def forward(ctx, x, idx):
        ctx.save_for_backward(idx)
        return x.gather(-1, idx)

    @staticmethod
    def backward(ctx, grad):
        idx, = ctx.saved_tensors
        return torch.empty_like(grad).scatter_(-1, idx, grad), None


def place_groups(eps_s, eps_t, group_size=16):
    """Rank each (sample, channel) by squared error and cut it into groups: (B, C, *spatial) -> 2 x (B, C, G, K)."""
    check_pair(eps_s, eps_t)
    B, C = eps_s.shape[:2]
    s, t = eps_s.reshape(B * C, -1), eps_t.detach().reshape(B * C, -1)      # (R, N), R = B * C
    check_group_size(s.shape[1], group_size)
    idx = rank_by_error(s, t)                                                # (R, N) error-ranked positions
    s, t = _Permute.apply(s, idx), t.gather(-1, idx)
    return s.view(B, C, -1, group_size), t.view(B, C, -1, group_size)       # (B, C, G, K)


def place_loss(eps_s, eps_t, group_size=16, *, reduction="mean", coarse="l1", weighting="adaptive", eps=1e-7):
    """LIFT with PLACE grouping (Sec. 3.3): b0, b1 fitted per group of group_size error-ranked elements."""
    check_options(reduction, coarse, weighting)
    s, t = place_groups(eps_s, eps_t, group_size)
    return grouped_loss(s, t, reduction, coarse, weighting, eps)
