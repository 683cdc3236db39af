"""CPU speed of the tiny preset's two networks in fp32, bf16 autocast and channels_last, side by side in one process,
and what bf16 does to the teacher's predictions (the KD target).

    python benchmarks/bench_cpu_formats.py                 # benchmarks/README.md's CPU-format table (1 thread)

The teacher's forward (no grad) and the student's forward + backward, batch --batch-size, median of --repeats calls.
The bf16 error is the teacher's per-sample summed squared difference between its bf16 and fp32 predictions on
train_unet_cifar's held-out set, beside its own diffusion loss there (the training loss scale).
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_unet_cifar  # noqa: E402
from models import load_unet  # noqa: E402


def median_ms(fn, repeats):
    fn()                                               # warm-up: allocations, oneDNN primitive caches
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return 1000 * statistics.median(times)


def main(args):
    torch.set_num_threads(args.threads)
    tiny = train_unet_cifar.PRESETS["tiny"]
    teacher = load_unet(tiny["teacher"]).eval().requires_grad_(False)
    student = load_unet(args.student or tiny["student_init"])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32, generator=g)
    t = torch.randint(0, 1000, (args.batch_size,), generator=g)

    def teacher_step():
        with torch.no_grad():
            teacher(x_in, t)

    def student_step():
        student(x_in, t).sample.square().sum().backward()

    rows = []
    for layout in ("contiguous", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        teacher.to(memory_format=fmt), student.to(memory_format=fmt)
        x_in = x.contiguous(memory_format=fmt)
        for dtype in ("fp32", "bf16"):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                rows.append((layout, dtype, median_ms(teacher_step, args.repeats),
                             median_ms(student_step, args.repeats)))
    teacher.to(memory_format=torch.contiguous_format)

    args_tu = train_unet_cifar.parse_args(["--preset", "tiny"])
    x0, th, noise = train_unet_cifar.heldout_set(args_tu, None, 32)
    from diffusers import DDPMScheduler
    a = DDPMScheduler(**train_unet_cifar.DDPM_SCHEDULE).alphas_cumprod[th].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    with torch.no_grad():
        fp32 = teacher(xt, th).sample
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = teacher(xt, th).sample.float()
    per_sample = lambda d: d.square().flatten(1).sum(1).mean().item()

    print(f"\nCPU, {args.threads} thread(s), batch {args.batch_size}, median of {args.repeats}; teacher "
          f"{sum(p.numel() for p in teacher.parameters()):,} parameters, student "
          f"{sum(p.numel() for p in student.parameters()):,}")
    print("| layout | precision | teacher forward ms | student forward + backward ms |")
    print("| --- | --- | ---: | ---: |")
    for layout, dtype, tm, sm in rows:
        print(f"| {layout} | {dtype} | {tm:.1f} | {sm:.1f} |")
    print(f"\nteacher on the held-out set (256 (x0, t, noise)), per-sample sum of squares: bf16 vs fp32 prediction "
          f"{per_sample(bf16 - fp32):.3f}; its diffusion loss {per_sample(fp32 - noise):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--student", help="a saved student (default: the tiny preset's 70 %% one)")
    main(parser.parse_args())
