"""study.py --quick: the CI version of the methods study writes every output with the right shape (not its ranking)."""
import csv
import json
import os
import subprocess
import sys

from helpers import REPO


def test_quick_study_outputs(tmp_path):
    """The pruned regime's three arms, every run with its row, log and held-out curve; the GN>=2 arm is the 90 %
    student's weights with groups of 2 channels where the 90 % one has groups of 1."""
    import torch
    from safetensors.torch import load_file
    from models import load_unet
    out = str(tmp_path / "study")
    p = subprocess.run([sys.executable, os.path.join(REPO, "study.py"), "--quick", "--out", out], cwd=REPO,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    runs = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
    methods, few = ["none", "outkd", "featkd", "outkd+featkd", "lift", "place"], ["none", "outkd", "place"]
    expected = [(m, "90%") for m in methods] + [(m, arm) for arm in ("70%", "90% GN>=2") for m in few]
    assert (sorted((r["method"], r["arm"], r["seed"]) for r in runs)
            == sorted((m, a, s) for m, a in expected for s in "01"))
    assert all(float(r["shape_fd"]) > 0 and r["steps"] == "3" and r["diverged"] == "0" for r in runs)
    assert ({(r["arm"], r["percent_of_teacher"]) for r in runs}
            == {("90%", "2.9"), ("90% GN>=2", "2.9"), ("70%", "16.64")})
    assert all(float(r["heldout_diffusion"]) > float(r["heldout_teacher_diffusion"]) > 0 for r in runs)
    held = list(csv.DictReader(open(os.path.join(out, "heldout.csv"))))
    assert len(held) == len(runs) * 4 and {h["step"] for h in held} == {"0", "1", "2", "3"}
    summary = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    assert len(summary) == 12 and all(s["seeds"] == "2" and float(s["shape_fd_std"]) >= 0 for s in summary)
    curves = list(csv.DictReader(open(os.path.join(out, "curves.csv"))))
    assert len(curves) == len(runs) * 3 and all(float(c["grad_norm_max"]) > 0 for c in curves)
    table = open(os.path.join(out, "summary.md")).read().splitlines()
    assert len([line for line in table if line.startswith("| ") and line.split("|")[1].strip() in methods]) == 6
    assert json.load(open(os.path.join(out, "settings.json")))["teacher_shape_fd"] > 0
    assert os.path.getsize(os.path.join(out, "study.png")) > 10_000
    p90, gn2 = (os.path.join(out, "inits", d, "pruned_init") for d in ("p90", "p90_gn2"))
    a, b = (load_file(os.path.join(d, "diffusion_pytorch_model.safetensors")) for d in (p90, gn2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    per_group = lambda d: [g.num_channels // g.num_groups for g in load_unet(d).modules()
                           if isinstance(g, torch.nn.GroupNorm)]
    assert min(per_group(p90)) == 1 and min(per_group(gn2)) == 2


def test_width_regime_runs_random_init_copies_with_the_old_recipe():
    import study
    import train_unet_cifar
    args = study.parse_args(["--regime", "width", "--out", "/tmp/w"])
    run = train_unet_cifar.parse_args(study.run_argv(args, "place", "1.6%", 0)[2])
    assert (run.student_width, run.student_init, run.prune_ratio, args.steps) == (0.125, None, None, 500)
    assert (run.dropout, run.flip, run.antithetic) == (0, 0, 0)
    args = study.parse_args(["--out", "/tmp/p"])
    run = train_unet_cifar.parse_args(study.run_argv(args, "place", "90% GN>=2", 0)[2])
    assert (run.student_init == study.init_dir(args, "prune 0.9 gn 2") and run.student_width is None
            and args.steps == 2000)
    assert (run.dropout, run.flip, run.antithetic, run.place_fitnet, run.eval_every) == (0.1, 1, 1, 1, 250)


def test_investigation_runs_change_one_setting_each():
    """Every investigation run parses as a train_unet_cifar command, has its own directory, and differs from the
    study's settings in exactly the setting its row names."""
    import study
    import train_unet_cifar
    args = study.parse_args(["--investigate", "--out", "/tmp/inv"])
    base = vars(train_unet_cifar.parse_args(study.run_argv(args, "place", "1.6%", 0)[2]))
    outs = set()
    for label, methods, flags in study.VARIANTS:
        for method in methods:
            out, steps, argv = study.run_argv(args, method, "1.6%", 0, flags)
            run = vars(train_unet_cifar.parse_args(argv))
            changed = {k for k in run if run[k] != base[k]} - {"kd", "out", "sample_every", "ckpt_every"}
            outs.add(out)
            expected = {"--steps": {"steps"}, "--lr": {"lr"}, "--kd-weight": {"kd_weight"},
                        "--group-size": {"group_size"},
                        "--prune-ratio": {"prune_ratio", "student_width"}}[flags[0]] if flags else set()
            assert changed == expected, (label, method, changed)
            assert steps == (4 * args.steps if flags[:2] == ["--steps", "x4"] else args.steps)
    assert len(outs) == sum(len(m) for _, m, _ in study.VARIANTS)
