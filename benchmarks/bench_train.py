"""Training-step time of the KD methods at the tiny preset on CPU, side by side in one process.

    python benchmarks/bench_train.py            # the README table

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


def step_ms(kd, steps, window, threads):
    """Median milliseconds per training step of --kd kd over the log windows after the first."""
    with tempfile.TemporaryDirectory() as out:
        args = train_unet_cifar.parse_args(["--preset", "tiny", "--kd", kd, "--steps", str(steps), "--out", out,
                                            "--log-every", str(window), "--sample-every", str(10 ** 9),
                                            "--ckpt-every", str(10 ** 9), "--fid-samples", "0",
                                            "--threads", str(threads)])
        train_unet_cifar.main(args)
        with open(os.path.join(out, "log.csv")) as f:
            rates = sorted(float(r["steps_per_s"]) for r in list(csv.DictReader(f))[1:])
    return 1000 / rates[len(rates) // 2]


def main(args):
    times = {kd: step_ms(kd, args.steps, args.window, args.threads) for kd in args.methods}
    print(f"\nCPU, {args.threads} threads, tiny preset (batch 64), median of {args.steps // args.window - 1} windows "
          f"of {args.window} steps")
    print("| --kd | ms / step | vs outkd |")
    print("| --- | ---: | ---: |")
    for kd, ms in times.items():
        print(f"| {kd} | {ms:.1f} | {ms / times['outkd']:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["none", "outkd", "lift", "place"])
    main(parser.parse_args())
