"""study.py --quick: the CI version of the methods study writes every output with the right shape (not its ranking)."""
import csv
import json
import os
import subprocess
import sys

from helpers import REPO


def test_quick_study_outputs(tmp_path):
    out = str(tmp_path / "study")
    p = subprocess.run([sys.executable, os.path.join(REPO, "study.py"), "--quick", "--out", out], cwd=REPO,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    runs = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
    methods = ["none", "outkd", "featkd", "outkd+featkd", "lift", "place"]
    assert sorted((r["method"], r["ratio"], r["seed"]) for r in runs) == sorted(
        (m, ratio, s) for m in methods for ratio in ("1.6%", "25%") for s in ("0", "1"))
    assert all(float(r["shape_fd"]) > 0 and r["steps"] == "3" and r["diverged"] == "0" for r in runs)
    assert {r["percent_of_teacher"] for r in runs} == {"1.73", "25.24"}
    summary = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
    assert len(summary) == 12 and all(s["seeds"] == "2" and float(s["shape_fd_std"]) >= 0 for s in summary)
    curves = list(csv.DictReader(open(os.path.join(out, "curves.csv"))))
    assert len(curves) == 24 * 3 and {c["step"] for c in curves} == {"1", "2", "3"}
    table = open(os.path.join(out, "summary.md")).read().splitlines()
    assert len([line for line in table if line.startswith("| ") and line.split("|")[1].strip() in methods]) == 6
    assert json.load(open(os.path.join(out, "settings.json")))["teacher_shape_fd"] > 0
    assert os.path.getsize(os.path.join(out, "study.png")) > 10_000


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
            expected = {"--steps": {"steps"}, "--lr": {"lr"}, "--kd-weight": {"kd_weight"}, "--group-size": {"group_size"},
                        "--prune-ratio": {"prune_ratio", "student_width"}}[flags[0]] if flags else set()
            assert changed == expected, (label, method, changed)
            assert steps == (4 * args.steps if flags[:2] == ["--steps", "x4"] else args.steps)
    assert len(outs) == sum(len(m) for _, m, _ in study.VARIANTS)
