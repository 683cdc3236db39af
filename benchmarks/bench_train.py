"""Training-step time of the KD methods, side by side in one process: the tiny preset on CPU, or a paper-shaped one.

    python benchmarks/bench_train.py                    # the README's CPU table
    python benchmarks/bench_train.py --paper-shape --device cuda --batch-size 128    # the README's GPU table
    python benchmarks/bench_train.py --paper-shape --device cuda --batch-size 128 --compile 0 1    # eager vs compile

--paper-shape: a teacher of google/ddpm-cifar10-32's architecture (35.7 M) with random weights, saved to a temp
directory, and its 1/8-width student (the time of a step does not depend on the weights).

Each method runs the real loop of train_unet_cifar.py (tiny teacher, 1.6 % student, batch 64) for --steps steps;
the time per step is read from its log (training only: sampling and checkpoints excluded), first window dropped.
"""
import argparse
import csv
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_unet_cifar  # noqa: E402


def step_ms(kd, compile, args, teacher):
    """Median milliseconds per training step of --kd kd (--compile compile) over the log windows after the first."""
    with tempfile.TemporaryDirectory() as out:
        args = train_unet_cifar.parse_args(["--preset", "tiny", "--kd", kd, "--steps", str(args.steps), "--out", out,
                                            "--student-width", "0.125", "--compile", str(compile),
                                            "--log-every", str(args.window), "--sample-every", str(10 ** 9),
                                            "--ckpt-every", str(10 ** 9), "--fid-samples", "0",
                                            "--threads", str(args.threads), "--device", args.device,
                                            "--batch-size", str(args.batch_size), "--teacher", teacher])
        train_unet_cifar.main(args)
        with open(os.path.join(out, "log.csv")) as f:
            rates = sorted(float(r["steps_per_s"]) for r in list(csv.DictReader(f))[1:])
    return 1000 / rates[len(rates) // 2]


def main(args):
    import torch
    from diffusers import UNet2DModel
    from models import DDPM_CIFAR10_CONFIG
    with tempfile.TemporaryDirectory() as teacher:
        if args.paper_shape:
            UNet2DModel.from_config(DDPM_CIFAR10_CONFIG).save_pretrained(teacher)
        else:
            teacher = train_unet_cifar.PRESETS["tiny"]["teacher"]
        times = {(kd, c): step_ms(kd, c, args, teacher) for c in args.compile for kd in args.methods}
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    print(f"\n{where}, {'ddpm-cifar10-32-shaped teacher' if args.paper_shape else 'tiny preset'}, 1/8-width student, "
          f"batch {args.batch_size}, median of {args.steps // args.window - 1} windows of {args.window} steps")
    print("| --kd | --compile | ms / step | vs outkd, eager |")
    print("| --- | ---: | ---: | ---: |")
    for (kd, c), ms in times.items():
        print(f"| {kd} | {c} | {ms:.1f} | {ms / times.get(('outkd', 0), ms):.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--paper-shape", action="store_true", help="a random teacher shaped as ddpm-cifar10-32")
    parser.add_argument("--methods", nargs="+", default=["none", "outkd", "lift", "place"])
    parser.add_argument("--compile", type=int, nargs="+", choices=[0, 1], default=[0],
                        help="0: eager, 1: torch.compile of the student (both: side by side)")
    main(parser.parse_args())
