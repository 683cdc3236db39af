"""Forward + backward time of the KD losses on CPU or a GPU, each beside a plain implementation of the same math.

    python benchmarks/bench_losses.py                   # the README's CPU table (2 threads)
    python benchmarks/bench_losses.py --device cuda     # the README's GPU table

Plain = what one would write first: argsort, two torch.gather calls, and per-group mean/var/cov through autograd
(lift.grouped_loss_plain). Every row checks that both give the same loss and gradient before timing them.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lift import grouped_loss_plain, lift_loss, outkd_loss  # noqa: E402
from place import place_loss  # noqa: E402


def plain_outkd(s, t):
    """Mean squared error."""
    return torch.nn.functional.mse_loss(s, t.detach())


def plain_lift(s, t):
    """LIFT with one group per (sample, channel), autograd statistics."""
    B, C = s.shape[:2]
    return grouped_loss_plain(s.reshape(B, C, 1, -1), t.reshape(B, C, 1, -1)).loss


def plain_place(s, t, group_size=16):
    """PLACE: argsort by squared error, two gathers, autograd statistics per group."""
    B, C = s.shape[:2]
    s2, t2 = s.reshape(B * C, -1), t.detach().reshape(B * C, -1)
    idx = torch.argsort((t2 - s2.detach()) ** 2, dim=-1, stable=True)
    sg, tg = s2.gather(-1, idx), t2.gather(-1, idx)
    return grouped_loss_plain(sg.view(B, C, -1, group_size), tg.view(B, C, -1, group_size)).loss


def timed(fn, s, t, repeats):
    """Median seconds of forward + backward over `repeats` runs, after one warm-up (GPU work waited for)."""
    sync = torch.cuda.synchronize if s.is_cuda else (lambda: None)
    times = []
    for i in range(repeats + 1):
        x = s.detach().requires_grad_(True)
        sync()
        start = time.perf_counter()
        fn(x, t).backward()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]


def check_same(fast, plain, s, t):
    """Assert fast and plain give the same loss and gradient (float32 tolerances)."""
    x1, x2 = s.detach().requires_grad_(True), s.detach().requires_grad_(True)
    l1, l2 = fast(x1, t), plain(x2, t)
    l1.backward(), l2.backward()
    torch.testing.assert_close(l1, l2, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-3, atol=1e-5 * x2.grad.abs().max().item())


def main(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    methods = {
        "outkd": (lambda s, t: outkd_loss(s, t).loss, plain_outkd),
        "lift": (lambda s, t: lift_loss(s, t).loss, plain_lift),
        "place": (lambda s, t: place_loss(s, t, args.group_size).loss,
                  lambda s, t: plain_place(s, t, args.group_size)),
    }
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"{where}, torch {torch.__version__}, group_size {args.group_size}, median of {args.repeats}, "
          f"forward+backward")
    print("| shape | loss | plain ms | ours ms | ours / plain |")
    print("| --- | --- | ---: | ---: | ---: |")
    shapes = [(128, 3, 32, 32), (32, 4, 32, 32), (4, 16, 128, 128)]     # CIFAR batch, DiT-like latents, SD3 1024^2
    for shape in shapes + ([(64, 16, 128, 128)] if device.type == "cuda" else []):      # + SD3's paper batch
        t = torch.randn(shape, device=device)
        s = 0.8 * t + 0.3 * torch.randn(shape, device=device) + 0.1          # a student that is partly right
        for name, (fast, plain) in methods.items():
            check_same(fast, plain, s, t)
            tp, tf = timed(plain, s, t, args.repeats), timed(fast, s, t, args.repeats)
            print(f"| {tuple(shape)} | {name} | {tp * 1e3:.2f} | {tf * 1e3:.2f} | {tf / tp:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--group-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    main(parser.parse_args())
