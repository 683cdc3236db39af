"""Does the paper's extreme-compression claim hold at small scale? KD methods on students pruned from a teacher.

The paper (Table 1) reports that at 90 % pruning (one channel per GroupNorm group) OutKD and feature KD become
unstable while LIFT + PLACE converges, and that at milder ratios all methods are close. This runs that comparison
offline on CPU with the shipped tiny teacher on the embedded shapes, in the paper's regime: students Taylor-pruned
from the teacher by the paper's pruner (`models.prune_unet`, made once in OUT/inits/), the authors' recipe (antithetic
t, flip, dropout 0.1, Adam, clip 1, sum scale; lr 1e-3 and EMA 0.999 scaled to the budget), their FitNet, and "Ours"
= place + 1e-6 FitNet. Three arms:
  90 %           the paper's ratio: none, outkd, featkd, outkd+featkd, lift, place
  70 %           a milder ratio, where the paper says all methods are close: none, outkd, place
  90 % GN>=2     the same 90 % widths and weights, GroupNorm groups of 2 channels instead of 1: none, outkd, place
Each run is train_unet_cifar.py (called in-process); finished runs are skipped, so a killed study resumes.

    python study.py --out results/pruned --workers 2     # the study (README of results/ for time and numbers)
    python study.py --out /tmp/study --quick             # the same pipeline in about two minutes (CI)
    python study.py --regime width --out results/width_students   # the earlier regime: random-init width copies
    python study.py --regime width --investigate --out results/width_students
    python study.py --picture --out results/tiny_preset  # the README's picture: the tiny preset's none/outkd/place

Writes OUT/runs.csv (one row per run), OUT/summary.csv and OUT/summary.md (mean +- std over seeds), OUT/curves.csv
(every run's log rows: losses, LIFT slope/intercept/w, largest pre-clip grad norm), OUT/heldout.csv (every run's
held-out diffusion loss and distance to the teacher every --eval-every steps), OUT/study.png, and OUT/runs/<run>/.
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import time

import torch

import train_unet_cifar
from common import KD_METHODS, write_json

TINY = train_unet_cifar.PRESETS["tiny"]
FEW = ["none", "outkd", "place"]
# regime -> arm -> (how the student is made, methods). "prune R [gn N]": the teacher pruned R by the paper's
# Taylor pruner, GroupNorm groups of at least N channels; "width F": a random-init copy with every width x F.
ARMS = {
    "pruned": {"90%": ("prune 0.9", KD_METHODS), "70%": ("prune 0.7", FEW), "90% GN>=2": ("prune 0.9 gn 2", FEW)},
    "width": {"1.6%": ("width 0.125", KD_METHODS), "25%": ("width 0.5", KD_METHODS)},
}
# regime -> flags every run of it gets (beside the tiny preset's); the width regime was run before the tiny preset
# had the authors' recipe, so it pins the old one
RECIPE = {"pruned": ["--place-fitnet", "1"], "width": ["--dropout", "0", "--flip", "0", "--antithetic", "0"]}
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


def init_dir(args, kind):
    """OUT/inits/<p90, p90_gn2, ...>/pruned_init: the student of a "prune R [gn N]" kind, made by make_inits."""
    words = kind.split()
    slug = f"p{round(float(words[1]) * 100)}" + (f"_gn{words[3]}" if len(words) > 2 else "")
    return os.path.join(args.out, "inits", slug, "pruned_init")


def make_inits(args):
    """The pruned arms' students, each made once: the teacher pruned by the paper's Taylor pruner with the tiny preset's
    settings (t stride 10, 64 images, seed 0; assets/tiny_unet_pruned70 is the 70 % one); "prune R gn N" is R's
    student, the same weights, with models.PRUNED_KEY's norm_min_channels N, so load_unet gives it GroupNorm groups
    of N channels."""
    from models import PRUNED_KEY
    kinds = [ARMS[args.regime][arm][0] for arm in args.arms if ARMS[args.regime][arm][0].startswith("prune")]
    for kind in dict.fromkeys(k for kind in kinds for k in (" ".join(kind.split()[:2]), kind)):   # bases first
        words, init = kind.split(), init_dir(args, kind)
        if os.path.exists(os.path.join(init, "config.json")):
            continue
        if len(words) == 2:
            run = train_unet_cifar.parse_args(["--preset", "tiny", "--teacher", args.teacher, "--prune-ratio", words[1],
                                               "--taylor-t-stride", str(args.taylor_t_stride),
                                               "--out", os.path.dirname(init)])
            torch.set_num_threads(args.threads)
            teacher = train_unet_cifar.load_teacher(run, torch.device("cpu"))
            images, _ = train_unet_cifar.load_images(None, teacher.config.sample_size, run.n_embedded, seed=run.seed)
            train_unet_cifar.make_student(run, teacher, dict(teacher.config), images, 0, 1, torch.device("cpu"))
            continue
        shutil.rmtree(init + ".tmp", ignore_errors=True)
        shutil.copytree(init_dir(args, " ".join(words[:2])), init + ".tmp")
        with open(os.path.join(init + ".tmp", "config.json")) as f:
            config = json.load(f)
        config[PRUNED_KEY]["norm_min_channels"] = int(words[3])
        write_json(os.path.join(init + ".tmp", "config.json"), config)
        os.replace(init + ".tmp", init)


def run_argv(args, method, arm, seed, flags=()):
    """(run dir, steps, train_unet_cifar argv) of one run. flags: changes to the study's settings (the
    investigation), e.g. ["--lr", "3e-3"], part of the run's name; ["--steps", "x4"] trains 4 times the study's
    steps."""
    flags = dict(zip(flags[::2], flags[1::2]))
    steps = args.steps * int(flags.pop("--steps", "x1")[1:])
    suffix = ("".join(f"_{k.strip('-')}{v}" for k, v in flags.items())
              + (f"_steps{steps}" if steps != args.steps else ""))
    slug = arm.replace("%", "").replace(" GN>=", "_gn")
    out = os.path.join(args.out, "runs", f"{method.replace('+', '_')}_{slug}_s{seed}{suffix}")
    kind = ARMS[args.regime][arm][0].split()
    student = (["--student-width", kind[1]] if kind[0] == "width"
               else ["--student-init", init_dir(args, ARMS[args.regime][arm][0])])
    argv = ["--preset", "tiny", "--teacher", args.teacher, "--kd", method,
            *([] if "--prune-ratio" in flags else student), "--seed", str(seed),
            "--out", out, "--steps", str(steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--log-every", str(args.log_every), "--sample-every", str(steps), "--ckpt-every", str(min(steps, 500)),
            "--eval-every", str(args.eval_every), "--fid-samples", str(args.samples),
            "--ddim-steps", str(args.ddim_steps),
            "--n-embedded", str(args.n_embedded), "--eval-teacher", "0", "--threads", str(args.threads), "--resume",
            *RECIPE[args.regime]] + [x for kv in flags.items() for x in kv]
    return out, steps, argv


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def run_one(args, method, arm, seed, flags=()):
    """Train + evaluate one student (skipped when OUT/runs/<name>/metrics.json exists): (runs.csv row, log rows,
    held-out rows)."""
    out, steps, argv = run_argv(args, method, arm, seed, flags)
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
    log = read_csv(os.path.join(out, "log.csv"))
    held = read_csv(os.path.join(out, "eval.csv")) if os.path.exists(os.path.join(out, "eval.csv")) else []
    spikes, final = stability(log)
    last = lambda rows, key: float(rows[-1][key]) if rows and rows[-1].get(key) else float("nan")
    raw = [float(r["diffusion"]) for r in held]
    row = dict(method=method, arm=arm, seed=seed, steps=steps,
               shape_fd=metrics.get("shape_fd", float("nan")), percent_of_teacher=metrics.get("percent_of_teacher"),
               diverged=diverged, spikes=spikes, final_diffusion_loss=final,
               heldout_diffusion=last(held, "ema_diffusion"), heldout_teacher_dist=last(held, "ema_teacher_dist"),
               heldout_rise=raw[-1] / min(raw) if raw else float("nan"),      # > 1: the raw student got worse late
               heldout_teacher_diffusion=metrics.get("heldout_teacher_diffusion", float("nan")),
               grad_norm_max=max((float(r["grad_norm_max"]) for r in log if r.get("grad_norm_max")),
                                 default=float("nan")),
               final_w=last(log, "w"), final_slope=last(log, "slope"), final_intercept=last(log, "intercept"))
    tag = dict(method=method, arm=arm, seed=seed)
    return row, [dict(tag, **r) for r in log], [dict(tag, **r) for r in held]


def _run_job(job):                                  # a worker process's job: (args, method, arm, seed)
    return run_one(*job)


def run_all(args, jobs):
    """run_one for every (method, arm, seed), on --workers processes; yields results in the jobs' order."""
    if args.workers == 1:
        yield from (run_one(args, *job) for job in jobs)
        return
    with torch.multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        yield from pool.imap(_run_job, [(args, *job) for job in jobs])


def teacher_value(args):
    """The teacher's shape-FD with the study's sampler settings (the reference line)."""
    from diffusers import UNet2DModel
    from metrics import ddim_sample, load_classifier, shape_metrics
    teacher = UNet2DModel.from_pretrained(args.teacher)
    samples = ddim_sample(teacher, train_unet_cifar.DDPM_SCHEDULE, args.samples, args.ddim_steps, seed=0)
    return shape_metrics(samples, load_classifier())["shape_fd"]


def summarise(args, rows):
    """Mean +- std over seeds of shape-FD, the final held-out and training diffusion losses; spikes and divergences
    summed; per (arm, method)."""
    std = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    out = []
    for arm in args.arms:
        for method in ARMS[args.regime][arm][1]:
            runs = [r for r in rows if r["arm"] == arm and r["method"] == method]
            cell = dict(arm=arm, method=method, seeds=len(runs))
            for key in ("shape_fd", "heldout_diffusion", "heldout_teacher_dist", "final_diffusion_loss",
                        "heldout_rise"):
                values = [r[key] for r in runs]
                cell.update({f"{key}_mean": statistics.mean(values), f"{key}_std": std(values)})
            cell.update(spikes=sum(r["spikes"] for r in runs), diverged=sum(r["diverged"] for r in runs),
                        grad_norm_max=max(r["grad_norm_max"] for r in runs))
            out.append(cell)
    return out


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(path, args, rows, curves, held, teacher_fd):
    """(a) shape-FD per method and arm, each seed a dot, the teacher a line; (b) held-out diffusion loss of the EMA
    student over training, mean over seeds, in the first arm, the teacher's a line; (c) the largest pre-clip
    gradient norm per log interval and (d) the LIFT slope, first arm, seed 0."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms, methods = args.arms, KD_METHODS
    first = arms[0]
    fig, ((ax, bx), (cx, dx)) = plt.subplots(2, 2, figsize=(13, 9))
    for j, arm in enumerate(arms):
        for i, method in enumerate(methods):
            fd = [r["shape_fd"] for r in rows if r["arm"] == arm and r["method"] == method]
            ax.scatter([i + 0.25 * (j - (len(arms) - 1) / 2)] * len(fd), fd, color=f"C{j}", s=18,
                       label=arm if i == 0 else None)
    ax.axhline(teacher_fd, color="k", ls="--", lw=1, label="teacher")
    ax.set_xticks(range(len(methods)), methods, rotation=20)
    ax.set_ylabel("shape-FD (lower is better)")
    ax.legend()
    for i, method in enumerate(methods):
        steps = sorted({int(h["step"]) for h in held if h["arm"] == first and h["method"] == method})
        mean = [statistics.mean(float(h["ema_diffusion"]) for h in held if h["arm"] == first and h["method"] == method
                                and int(h["step"]) == s) for s in steps]
        bx.plot(steps, mean, color=f"C{i}", lw=1.2, label=method)
        run = [c for c in curves if c["method"] == method and c["arm"] == first and c["seed"] == 0]
        cx.plot([int(c["step"]) for c in run], [float(c["grad_norm_max"]) for c in run], color=f"C{i}", lw=0.8,
                label=method)
        if run and run[0].get("slope"):
            dx.plot([int(c["step"]) for c in run], [float(c["slope"]) for c in run], color=f"C{i}", lw=0.8,
                    label=method)
    teacher_loss = [r["heldout_teacher_diffusion"] for r in rows
                    if r["heldout_teacher_diffusion"] == r["heldout_teacher_diffusion"]]
    if teacher_loss:
        bx.axhline(teacher_loss[0], color="k", ls="--", lw=1, label="teacher")
    bx.set(yscale="log", xlabel="step", ylabel=f"held-out diffusion loss, EMA student ({first}, mean of seeds)")
    cx.set(yscale="log", xlabel="step", ylabel=f"largest pre-clip grad norm per log row ({first}, seed 0)")
    dx.set(xlabel="step", ylabel=f"LIFT slope b1 of the teacher on the student ({first}, seed 0)")
    for x in (bx, cx, dx):
        x.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(args):
    os.makedirs(args.out, exist_ok=True)
    tic = time.time()
    make_inits(args)
    jobs = [(method, arm, seed) for seed in range(args.seeds)       # seeds outermost: a partial study covers every arm
            for arm in args.arms for method in ARMS[args.regime][arm][1]]
    rows, curves, held = [], [], []
    for (method, arm, seed), (row, curve, heldout) in zip(jobs, run_all(args, jobs)):
        rows.append(row)
        curves += curve
        held += heldout
        print(f"[study {time.time() - tic:7.0f} s] {method:13s} {arm:9s} seed {seed}: shape-FD {row['shape_fd']:.2f}, "
              f"held-out loss {row['heldout_diffusion']:.1f}, spikes {row['spikes']}, diverged {row['diverged']}",
              flush=True)
    teacher_fd = teacher_value(args)
    summary = summarise(args, rows)
    write_csv(os.path.join(args.out, "runs.csv"), rows)
    write_csv(os.path.join(args.out, "curves.csv"), curves)
    if held:
        write_csv(os.path.join(args.out, "heldout.csv"), held)
    write_csv(os.path.join(args.out, "summary.csv"), summary)
    arms = args.arms
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(f"shape-FD ({args.samples} samples, DDIM {args.ddim_steps}) and held-out diffusion loss of the EMA "
                f"student (per-sample sum, 256 fixed (x0, t, noise)) over {args.seeds} seeds, mean ± std, after "
                f"{args.steps} steps × batch {args.batch_size}; spikes (diverged runs) summed over seeds; teacher "
                f"shape-FD {teacher_fd:.2f}, held-out loss {rows[0]['heldout_teacher_diffusion']:.1f}\n\n")
        f.write("| method | " + " | ".join(f"{a} shape-FD | {a} held-out loss | {a} spikes" for a in arms)
                + " |\n| --- |" + " ---: | ---: | ---: |" * len(arms) + "\n")
        for method in KD_METHODS:
            cells = []
            for arm in arms:
                s = next((s for s in summary if s["method"] == method and s["arm"] == arm), None)
                cells.append(" | | " if s is None else
                             f"{s['shape_fd_mean']:.2f} ± {s['shape_fd_std']:.2f} | "
                             f"{s['heldout_diffusion_mean']:.1f} ± {s['heldout_diffusion_std']:.1f} | {s['spikes']}"
                             + (f" ({s['diverged']})" if s["diverged"] else ""))
            f.write(f"| {method} | " + " | ".join(cells) + " |\n")
    write_json(os.path.join(args.out, "settings.json"),
               dict(vars(args), teacher_shape_fd=teacher_fd, seconds=round(time.time() - tic)))
    plot(os.path.join(args.out, "study.png"), args, rows, curves, held, teacher_fd)
    print(open(os.path.join(args.out, "summary.md")).read())


def investigate(args):
    """The width regime's 1.6 % student with one setting changed at a time, for none / outkd / place:
    OUT/investigation.{csv,md}."""
    os.makedirs(args.out, exist_ok=True)
    tic, rows = time.time(), []
    for label, methods, flags in VARIANTS:
        for seed in range(args.seeds):
            for method in methods:
                row, _, _ = run_one(args, method, "1.6%", seed, flags)
                rows.append(dict(variant=label, **row))
                print(f"[investigate {time.time() - tic:7.0f} s] {label:28s} {method:6s} seed {seed}: "
                      f"shape-FD {row['shape_fd']:.2f}, final diffusion loss {row['final_diffusion_loss']:.1f}",
                      flush=True)
    write_csv(os.path.join(args.out, "investigation.csv"), rows)
    methods = ["none", "outkd", "place"]
    with open(os.path.join(args.out, "investigation.md"), "w") as f:
        f.write(f"1.6 % student, shape-FD (final diffusion loss), mean over {args.seeds} seed(s); "
                f"one setting changed from the study's ({args.steps} steps, lr {args.lr:g}, kd-weight 1, K 16, "
                f"random init)\n\n")
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
    parser = argparse.ArgumentParser(description="KD methods on students pruned from the tiny teacher, several seeds "
                                     "(offline); or the earlier regime of random-init width students.")
    parser.add_argument("--out", default="results/pruned")
    parser.add_argument("--regime", choices=list(ARMS), default="pruned",
                        help="pruned: the paper's students (default); width: the earlier random-init width copies")
    parser.add_argument("--quick", action="store_true", help="a minutes-long version of the same study (CI)")
    parser.add_argument("--investigate", action="store_true",
                        help="instead of the study: the width regime's 1.6 %% student, one setting changed at a time")
    parser.add_argument("--picture", action="store_true",
                        help="instead of the study: the README's picture, teacher beside the tiny preset's students")
    parser.add_argument("--arms", nargs="+", help="run only these arms of the regime (default: all)")
    parser.add_argument("--teacher", default=TINY["teacher"], help="the tiny preset's by default")
    parser.add_argument("--seeds", type=int, help="seeds per setting (default 3; 1 with --investigate)")
    parser.add_argument("--steps", type=int, help="per run (pruned: 2000, width: 500)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="the tiny preset's learning rate")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=250, help="held-out loss every N steps (OUT/heldout.csv)")
    parser.add_argument("--samples", type=int, default=500, help="samples per run for shape-FD")
    parser.add_argument("--ddim-steps", type=int, default=20)
    parser.add_argument("--n-embedded", type=int, default=20_000)
    parser.add_argument("--taylor-t-stride", type=int, default=TINY["taylor_t_stride"], help="of the pruned students")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time (processes)")
    args = parser.parse_args(argv)
    if args.investigate:
        args.regime = "width"
    unknown = set(args.arms or ()) - set(ARMS[args.regime])
    if unknown:
        parser.error(f"--arms {' '.join(sorted(unknown))}: the {args.regime} regime's arms are "
                     f"{', '.join(ARMS[args.regime])}")
    args.arms = args.arms or list(ARMS[args.regime])
    args.seeds = args.seeds or (1 if args.investigate else 3)
    args.steps = args.steps or (2000 if args.regime == "pruned" else 500)
    if args.quick:
        (args.steps, args.log_every, args.eval_every, args.samples, args.ddim_steps,
         args.n_embedded) = 3, 1, 1, 16, 2, 256
        args.seeds, args.taylor_t_stride = (1 if args.investigate else 2), 250
    return args


if __name__ == "__main__":
    args = parse_args()
    investigate(args) if args.investigate else picture(args) if args.picture else main(args)
