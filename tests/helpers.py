"""What the script tests share: run a training script through its smoke preset, read its log, check an error line,
resume after a fault, FID offline."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(script, *args, env=None, launcher=()):
    """Run REPO/script with --preset smoke and args, offline; return the CompletedProcess."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run([*(launcher or [sys.executable]), os.path.join(REPO, script), "--preset", "smoke", *args],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


def rows(out):
    """The rows of OUT/log.csv."""
    with open(os.path.join(out, "log.csv")) as f:
        return list(csv.DictReader(f))


def run_kd_method(script, kd, out):
    """Run script's smoke preset with --kd kd into out: exit 0, the four steps logged, each with a positive diffusion
    loss and a KD loss that is positive unless --kd none. Returns the log rows and metrics.json."""
    p = run_script(script, "--kd", kd, "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    log = rows(out)
    assert [int(r["step"]) for r in log] == [1, 2, 3, 4]
    assert all(float(r["diffusion"]) > 0 and (float(r["kd"]) > 0) == (kd != "none") for r in log)
    return log, json.load(open(os.path.join(out, "metrics.json")))


def assert_one_line_error(p, message):
    """A non-zero exit whose last stderr line is `error: ...message...`, with no traceback."""
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in p.stderr


def torchrun(port, processes=2):
    """The launcher of `processes` CPU processes under torchrun (gloo) on a master port of the test's own."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(port)]


def assert_ddp_smoke(script, out, port):
    """Two CPU processes (torchrun, gloo) through the smoke preset with OutKD + feature KD (hooks under DDP): four
    logged steps with a KD loss, and a saved student."""
    p = run_script(script, "--kd", "outkd+featkd", "--device", "cpu", "--threads", "1", "--fid-samples", "0",
                   "--out", out, launcher=torchrun(port))
    assert p.returncode == 0, p.stderr[-2000:]
    assert [int(r["step"]) for r in rows(out)] == [1, 2, 3, 4] and float(rows(out)[-1]["kd"]) > 0
    assert os.path.exists(os.path.join(out, "student", "config.json"))


def assert_resumed_equals_straight(script, fault, straight, broken, args, launcher=()):
    """A straight run of 6 steps, and one stopped by `fault` after step 5 then resumed, end alike: bit-equal student
    weights and the same log. LIFT_KILL_AT_STEP (SIGKILL) leaves the checkpoint of step 4 as the last;
    LIFT_INTERRUPT_AT_STEP (Ctrl-C) finishes step 5, checkpoints it and exits 130 with one line saying how to go on."""
    args = [*args, "--steps", "6", "--ckpt-every", "2"]
    p = run_script(script, *args, "--out", straight, launcher=launcher)
    assert p.returncode == 0, p.stderr[-2000:]
    p = run_script(script, *args, "--out", broken, env={fault: "5"}, launcher=launcher)
    assert p.returncode != 0 and not os.path.exists(os.path.join(broken, "student"))
    last = 4 if fault == "LIFT_KILL_AT_STEP" else 5
    assert open(os.path.join(broken, "latest")).read() == f"ckpt_{last:08d}"
    if fault == "LIFT_INTERRUPT_AT_STEP":
        assert p.returncode == 130 and "Traceback" not in p.stderr
        assert p.stderr.strip().splitlines()[-1].startswith("interrupted after step 5")
    p = run_script(script, *args, "--out", broken, "--resume", launcher=launcher)
    assert p.returncode == 0 and f"resumed from step {last}" in p.stdout, p.stderr[-2000:]
    a, b = (load_file(os.path.join(d, "student", "diffusion_pytorch_model.safetensors")) for d in (straight, broken))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rows(straight) == [dict(r, steps_per_s=s["steps_per_s"]) for r, s in zip(rows(broken), rows(straight))]


def assert_offline_fid_is_null(script, tmp_path):
    """FID asked for (--fid-stats, a small valid .npz) with no Inception weights to be had (offline; empty torch hub
    and temp dirs): the run still ends with exit 0 and metrics.json holding the other metrics, fid null and the
    reason, after one warning line."""
    np.savez(tmp_path / "stats.npz", mu=np.zeros(4), sigma=np.eye(4))
    out = str(tmp_path / "run")
    p = run_script(script, "--fid-stats", str(tmp_path / "stats.npz"), "--fid-samples", "4", "--out", out,
                   env={"TMPDIR": str(tmp_path), "TORCH_HOME": str(tmp_path / "torch")})
    assert p.returncode == 0, p.stderr[-2000:]
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["fid"] is None and "Inception" in metrics["fid_unavailable"] and metrics["student_params"] > 0
    warnings = [line for line in p.stdout.splitlines() if "no FID" in line]
    assert warnings == [f"warning: no FID: {metrics['fid_unavailable']}"]


# Flags out of range that both latent scripts reject at parse time, with the one line each gives
LATENT_BAD_FLAGS = [
    (["--batch-size", "0"], "--batch-size 0 must be >= 1"),
    (["--steps", "-5"], "--steps -5 must be >= 1"),
    (["--lr", "0"], "--lr 0.0 must be > 0"),
    (["--ema", "1"], "--ema 1.0 must be in [0, 1)"),
    (["--ckpt-every", "0"], "--ckpt-every 0 must be >= 1"),
    (["--sample-batch-size", "0"], "--sample-batch-size 0 must be >= 1"),
    (["--fid-stats", "/no/such/stats.npz"], "--fid-stats /no/such/stats.npz is not a file"),
    (["--out", __file__], "is a file, not a run directory"),
]
