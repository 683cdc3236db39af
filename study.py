"""Does the paper's extreme-compression claim hold at small scale? Every KD method at two student sizes, several seeds.

The paper (Table 1) reports that at a 1.6 % student OutKD and feature KD become unstable while LIFT + PLACE
converges, and that at milder ratios all methods are close. This runs the same comparison offline on CPU: the
shipped tiny teacher on the embedded shapes dataset; students of 1.6 % (width 1/8) and 25 % (width 1/2), both
randomly initialised; methods none, outkd, featkd, outkd+featkd, lift, place; the same steps and settings for all.
Each run is train_unet_cifar.py (called in-process); finished runs are skipped, so a killed study resumes.

    python study.py --out results                       # the full study, about 1.5 hours on 2 CPU cores
    python study.py --out /tmp/study --quick            # the same pipeline in about a minute (CI)
    python study.py --out results --investigate         # why place does not win at 1.6 %: one knob at a time
    python study.py --out results --picture             # the README's picture: the tiny preset's none/outkd/place

Writes OUT/runs.csv (one row per run), OUT/summary.csv and OUT/summary.md (mean +- std over seeds),
OUT/curves.csv (every run's logged losses and LIFT diagnostics), OUT/study.png, and OUT/runs/<run>/ for each run.
With --investigate: OUT/investigation.csv and OUT/investigation.md, the 1.6 % student with one setting changed
at a time (steps, learning rate, kd-weight, group size K, init from the pruned teacher) for none, outkd and place.
"""
import argparse
import csv
import json
import os
import statistics
import time

import torch

import train_unet_cifar
from common import KD_METHODS, write_json

RATIOS = {"1.6%": 0.125, "25%": 0.5}              # name -> --student-width (1/8 and 1/2 of every width)
METHODS = KD_METHODS
SPIKE_FACTOR = 3.0                                 # a logged diffusion loss above 3x the median of the 10 rows
SPIKE_WINDOW = 10                                  # before it counts as a spike
VARIANTS = [                                       # the investigation: (label, methods, flags changed from the study)
    ("study settings", ["none", "outkd", "place"], []),
    ("4x steps", ["none", "outkd", "place"], ["--steps", "x4"]),
    ("lr 3e-3", ["none", "outkd", "place"], ["--lr", "3e-3"]),
    ("lr 3e-4", ["none", "outkd", "place"], ["--lr", "3e-4"]),
    ("kd-weight 0.1", ["outkd", "place"], ["--kd-weight", "0.1"]),
    ("kd-weight 10", ["outkd", "place"], ["--kd-weight", "10"]),
    ("K 4", ["place"], ["--group-size", "4"]),
    ("K 64", ["place"], ["--group-size", "64"]),
    ("K 1024", ["place"], ["--group-size", "1024"]),
    ("init: teacher pruned 87.5 %", ["none", "outkd", "place"], ["--prune-ratio", "0.875"]),
]


def stability(log_rows):
    """(spikes, final diffusion loss) of one run's log: a spike is a diffusion loss > SPIKE_FACTOR x trailing median."""
    losses = [float(r["diffusion"]) for r in log_rows]
    spikes = sum(1 for i in range(SPIKE_WINDOW, len(losses))
                 if losses[i] > SPIKE_FACTOR * statistics.median(losses[i - SPIKE_WINDOW:i]))
    return spikes, (statistics.mean(losses[-5:]) if losses else float("nan"))


def run_argv(args, method, ratio, seed, flags=()):
    """(run dir, steps, train_unet_cifar argv) of one run. flags: changes to the study's settings (the
    investigation), e.g. ["--lr", "3e-3"], part of the run's name; ["--steps", "x4"] trains 4 times the study's steps."""
    flags = dict(zip(flags[::2], flags[1::2]))
    steps = args.steps * int(flags.pop("--steps", "x1")[1:])
    suffix = "".join(f"_{k.strip('-')}{v}" for k, v in flags.items()) + (f"_steps{steps}" if steps != args.steps else "")
    out = os.path.join(args.out, "runs", f"{method.replace('+', '_')}_{ratio.rstrip('%')}_s{seed}{suffix}")
    size = [] if "--prune-ratio" in flags else ["--student-width", str(RATIOS[ratio])]
    argv = ["--preset", "tiny", "--teacher", args.teacher, "--kd", method, *size, "--seed", str(seed),
            "--out", out, "--steps", str(steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--log-every", str(args.log_every), "--sample-every", str(steps), "--ckpt-every", str(steps),
            "--fid-samples", str(args.samples), "--ddim-steps", str(args.ddim_steps), "--n-embedded", str(args.n_embedded),
            "--eval-teacher", "0", "--threads", str(args.threads), "--resume",
            "--dropout", "0", "--flip", "0", "--antithetic", "0"] + [x for kv in flags.items() for x in kv]
    return out, steps, argv                        # (the tiny preset's recipe was not part of this study)


def run_one(args, method, ratio, seed, flags=()):
    """Train + evaluate one student (skipped when OUT/runs/<name>/metrics.json exists); its runs.csv row."""
    out, steps, argv = run_argv(args, method, ratio, seed, flags)
    metrics_path = os.path.join(out, "metrics.json")
    diverged = 0
    if not os.path.exists(metrics_path):
        try:
            train_unet_cifar.main(train_unet_cifar.parse_args(argv))
        except SystemExit as e:                     # the script exits when the loss is not finite: a divergence
            if e.code == 130:                       # ... or when interrupted (Ctrl-C): stop the study too
                raise
            diverged = 1
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    with open(os.path.join(out, "log.csv")) as f:
        log = list(csv.DictReader(f))
    spikes, final = stability(log)
    row = dict(method=method, ratio=ratio, student_width=RATIOS[ratio], seed=seed, steps=steps,
               shape_fd=metrics.get("shape_fd", float("nan")), percent_of_teacher=metrics.get("percent_of_teacher"),
               diverged=diverged, spikes=spikes, final_diffusion_loss=final,
               final_w=float(log[-1]["w"]) if log and log[-1]["w"] else float("nan"))
    curves = [dict(method=method, ratio=ratio, seed=seed, **r) for r in log]
    return row, curves


def teacher_value(args):
    """The teacher's shape-FD with the study's sampler settings (the reference line)."""
    from diffusers import UNet2DModel
    from metrics import ddim_sample, load_classifier, shape_metrics
    teacher = UNet2DModel.from_pretrained(args.teacher)
    samples = ddim_sample(teacher, train_unet_cifar.DDPM_SCHEDULE, args.samples, args.ddim_steps, seed=0)
    return shape_metrics(samples, load_classifier())["shape_fd"]


def summarise(rows, ratios):
    """Mean +- std over seeds of shape-FD and of the final diffusion loss, spikes and divergences, per (ratio, method)."""
    std = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    out = []
    for ratio in ratios:
        for method in METHODS:
            runs = [r for r in rows if r["ratio"] == ratio and r["method"] == method]
            fd, loss = [r["shape_fd"] for r in runs], [r["final_diffusion_loss"] for r in runs]
            out.append(dict(ratio=ratio, method=method, seeds=len(runs), shape_fd_mean=statistics.mean(fd),
                            shape_fd_std=std(fd), diffusion_loss_mean=statistics.mean(loss), diffusion_loss_std=std(loss),
                            spikes=sum(r["spikes"] for r in runs), diverged=sum(r["diverged"] for r in runs)))
    return out


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(path, rows, curves, teacher_fd, ratios):
    """Left: shape-FD per method and ratio (each seed a dot, the teacher a line); right: diffusion-loss curves."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.5))
    for j, ratio in enumerate(ratios):
        for i, method in enumerate(METHODS):
            fd = [r["shape_fd"] for r in rows if r["ratio"] == ratio and r["method"] == method]
            ax.scatter([i + 0.2 * (2 * j - 1)] * len(fd), fd, color=f"C{j}", s=18, label=ratio if i == 0 else None)
    ax.axhline(teacher_fd, color="k", ls="--", lw=1, label="teacher")
    ax.set_xticks(range(len(METHODS)), METHODS, rotation=20)
    ax.set_ylabel("shape-FD (lower is better)")
    ax.legend()
    for i, method in enumerate(METHODS):
        run = [c for c in curves if c["method"] == method and c["ratio"] == "1.6%" and c["seed"] == 0]
        bx.plot([int(c["step"]) for c in run], [float(c["diffusion"]) for c in run], color=f"C{i}", lw=1, label=method)
    bx.set_yscale("log")
    bx.set_xlabel("step")
    bx.set_ylabel("diffusion loss (1.6 % student, seed 0)")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(args):
    os.makedirs(args.out, exist_ok=True)
    tic = time.time()
    rows, curves = [], []
    for seed in range(args.seeds):                  # seeds outermost: a partial study already covers every method
        for ratio in args.ratios:
            for method in METHODS:
                row, curve = run_one(args, method, ratio, seed)
                rows.append(row)
                curves += curve
                print(f"[study {time.time() - tic:7.0f} s] {method:13s} {ratio:5s} seed {seed}: "
                      f"shape-FD {row['shape_fd']:.2f}, spikes {row['spikes']}, diverged {row['diverged']}", flush=True)
    teacher_fd = teacher_value(args)
    summary = summarise(rows, args.ratios)
    write_csv(os.path.join(args.out, "runs.csv"), rows)
    write_csv(os.path.join(args.out, "curves.csv"), curves)
    write_csv(os.path.join(args.out, "summary.csv"), summary)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(f"shape-FD and final diffusion loss (per-sample sum, mean of the last 5 logged) over {args.seeds} seeds, "
                f"mean ± std; teacher shape-FD {teacher_fd:.2f}; {args.steps} steps\n\n")
        f.write("| method | " + " | ".join(f"{r} shape-FD | {r} diffusion loss | {r} spikes" for r in args.ratios)
                + " |\n| --- |" + " ---: | ---: | ---: |" * len(args.ratios) + "\n")
        for method in METHODS:
            cells = [s for s in summary if s["method"] == method]
            f.write(f"| {method} | " + " | ".join(f"{s['shape_fd_mean']:.2f} ± {s['shape_fd_std']:.2f} | "
                                                 f"{s['diffusion_loss_mean']:.0f} ± {s['diffusion_loss_std']:.0f} | "
                                                 f"{s['spikes']}" + (f" ({s['diverged']} diverged)" if s["diverged"] else "")
                                                 for s in cells) + " |\n")
    write_json(os.path.join(args.out, "settings.json"),
               dict(vars(args), teacher_shape_fd=teacher_fd, seconds=round(time.time() - tic)))
    plot(os.path.join(args.out, "study.png"), rows, curves, teacher_fd, args.ratios)
    print(open(os.path.join(args.out, "summary.md")).read())


def investigate(args):
    """The 1.6 % student with one setting changed at a time, for none / outkd / place: OUT/investigation.{csv,md}."""
    os.makedirs(args.out, exist_ok=True)
    tic, rows = time.time(), []
    for label, methods, flags in VARIANTS:
        for seed in range(args.seeds):
            for method in methods:
                row, _ = run_one(args, method, "1.6%", seed, flags)
                rows.append(dict(variant=label, **row))
                print(f"[investigate {time.time() - tic:7.0f} s] {label:28s} {method:6s} seed {seed}: "
                      f"shape-FD {row['shape_fd']:.2f}, final diffusion loss {row['final_diffusion_loss']:.1f}", flush=True)
    write_csv(os.path.join(args.out, "investigation.csv"), rows)
    methods = ["none", "outkd", "place"]
    with open(os.path.join(args.out, "investigation.md"), "w") as f:
        f.write(f"1.6 % student, shape-FD (final diffusion loss), mean over {args.seeds} seed(s); "
                f"one setting changed from the study's ({args.steps} steps, lr {args.lr:g}, kd-weight 1, K 16, random init)\n\n")
        f.write("| change | " + " | ".join(methods) + " |\n| --- |" + " ---: |" * len(methods) + "\n")
        for label, _, _ in VARIANTS:
            cells = []
            for method in methods:
                runs = [r for r in rows if r["variant"] == label and r["method"] == method]
                cells.append(f"{statistics.mean(r['shape_fd'] for r in runs):.2f} "
                             f"({statistics.mean(r['final_diffusion_loss'] for r in runs):.0f})" if runs else "")
            f.write(f"| {label} | " + " | ".join(cells) + " |\n")
    print(open(os.path.join(args.out, "investigation.md")).read())


def picture(args):
    """The README's first picture, OUT/tiny_preset.png: the teacher's samples beside the students of the README's
    first command (the tiny preset) with --kd none, outkd and place, the same noise seeds (DDIM 50, eta 0), each
    captioned with its shape-FD from its metrics.json (1000 samples). Runs missing in OUT/runs/tiny_KD are trained."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from metrics import ddim_sample
    from models import load_unet
    tiny = train_unet_cifar.PRESETS["tiny"]
    with open(os.path.join(tiny["teacher"], "reference_metrics.json")) as f:
        panels = [("teacher", tiny["teacher"], json.load(f)["shape_fd"])]
    for kd in ("none", "outkd", "place"):
        out = os.path.join(args.out, "runs", f"tiny_{kd}")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            quick = ["--steps", "3", "--fid-samples", "16", "--ddim-steps", "2"] if args.quick else []
            train_unet_cifar.main(train_unet_cifar.parse_args(["--preset", "tiny", "--kd", kd, "--out", out, "--resume",
                                                               "--threads", str(args.threads), *quick]))
        with open(os.path.join(out, "metrics.json")) as f:
            panels.append((kd, os.path.join(out, "student"), json.load(f)["shape_fd"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (name, path, fd) in zip(axes, panels):
        s = ddim_sample(load_unet(path), train_unet_cifar.DDPM_SCHEDULE, 16, steps=tiny["ddim_steps"], seed=0)
        ax.imshow(torch.cat([torch.cat(list(s[r * 4:(r + 1) * 4]), 2) for r in range(4)], 1).permute(1, 2, 0))
        ax.set_title(f"{name}\nshape-FD {fd:.2f}")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "tiny_preset.png"), dpi=100, bbox_inches="tight")
    print(f"wrote {os.path.join(args.out, 'tiny_preset.png')}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Every KD method at 1.6 % and 25 % students, several seeds (offline).")
    parser.add_argument("--out", default="results")
    parser.add_argument("--quick", action="store_true", help="a minute-long version of the same study (CI)")
    parser.add_argument("--investigate", action="store_true",
                        help="instead of the study: the 1.6 %% student with one setting changed at a time")
    parser.add_argument("--picture", action="store_true",
                        help="instead of the study: the README's picture, teacher beside the tiny preset's students")
    parser.add_argument("--teacher", default=train_unet_cifar.PRESETS["tiny"]["teacher"], help="the tiny preset's by default")
    parser.add_argument("--ratios", nargs="+", choices=list(RATIOS), default=list(RATIOS), help="student sizes to run")
    parser.add_argument("--seeds", type=int, help="seeds per setting (default 3; 1 with --investigate)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="the tiny preset's learning rate")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--samples", type=int, default=500, help="samples per run for shape-FD")
    parser.add_argument("--ddim-steps", type=int, default=20)
    parser.add_argument("--n-embedded", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (1 if args.investigate else 3)
    if args.quick:
        args.steps, args.log_every, args.samples, args.ddim_steps, args.n_embedded = 3, 1, 16, 2, 256
        args.seeds = 1 if args.investigate else 2
    return args


if __name__ == "__main__":
    args = parse_args()
    investigate(args) if args.investigate else picture(args) if args.picture else main(args)
