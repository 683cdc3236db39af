"""train_unet_cifar.py end to end through its smoke preset (subprocesses, as a user runs it)."""
import csv
import json
import os

import pytest
import torch
from diffusers import UNet2DModel
from safetensors.torch import load_file

import models
from models import load_unet
from test_tools import TINY, _cifar_tarball
from helpers import (assert_ddp_smoke, assert_one_line_error, assert_resumed_equals_straight, rows, run_kd_method,
                     run_script, torchrun)


def run(*args, env=None):
    return run_script("train_unet_cifar.py", *args, env=env)


@pytest.mark.parametrize("kd", ["none", "outkd", "featkd", "outkd+featkd", "lift", "place"])
def test_every_kd_method_end_to_end(kd, tmp_path):
    out = str(tmp_path / kd)
    log, metrics = run_kd_method("train_unet_cifar.py", kd, out)
    if kd in ("lift", "place"):                     # the curriculum weight is logged and in [0, 1]
        assert all(0 <= float(r["w"]) <= 1 for r in log)
    assert metrics["method"] == kd and metrics["shape_fd"] > 0 and metrics["percent_of_teacher"] == 16.64  # pruned 70 %
    assert metrics["sampler"] == "DDIM" and metrics["ddim_steps"] == 4 and metrics["n_samples"] == 16
    assert metrics["args"]["kd"] == kd and ("teacher_shape_fd" in metrics) == (kd != "none")
    student = load_unet(os.path.join(out, "student"))
    assert sum(p.numel() for p in student.parameters()) == metrics["student_params"]
    assert os.path.exists(os.path.join(out, "samples_00000004.png"))
    card = open(os.path.join(out, "student", "README.md")).read()            # the model card
    assert f"`--kd {kd}` for 4 steps: {metrics['student_params']:,} parameters, 16.64 %" in card
    assert f"| shape_fd | {metrics['shape_fd']} |" in card and "train_unet_cifar.py --preset smoke --kd" in card
    assert os.path.getsize(os.path.join(out, "curves.png")) > 10_000


@pytest.mark.parametrize("fault", ["LIFT_KILL_AT_STEP", "LIFT_INTERRUPT_AT_STEP"])
def test_killed_or_interrupted_and_resumed_equals_straight(fault, tmp_path):
    """SIGKILL after step 5 (the checkpoint of step 4 is the last) or Ctrl-C at step 5 (the step finishes, a checkpoint
    is written, one line says how to go on), then --resume: the same weights, EMA and log as a straight run. With the
    paper's student and recipe: pruned (kept in OUT/pruned_init), flip, antithetic t, dropout, EMA without warm-up,
    place + FitNet."""
    straight, broken = str(tmp_path / "straight"), str(tmp_path / "broken")
    assert_resumed_equals_straight("train_unet_cifar.py", fault, straight, broken, [
        "--kd", "place", "--prune-ratio", "0.5", "--place-fitnet", "1", "--flip", "1", "--antithetic", "1",
        "--dropout", "0.1", "--ema-warmup", "0", "--sample-every", "100", "--fid-samples", "0", "--eval-every", "2"])
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(os.path.join(straight, "ckpt_00000006", name))
        b = load_file(os.path.join(broken, "ckpt_00000006", name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    held = [open(os.path.join(d, "eval.csv")).read().splitlines() for d in (straight, broken)]
    assert held[0] == held[1] and [line.split(",")[0] for line in held[0][1:]] == ["0", "2", "4", "6"]


def test_ddp_killed_and_resumed_equals_straight_each_rank_its_own_rng(tmp_path):
    """Two CPU processes (torchrun, gloo), killed after step 5 and resumed from step 4, end as a straight run: each
    rank resumes its own random stream (flips, timesteps, noise, dropout), which the checkpoint holds for both ranks,
    not rank 0's everywhere."""
    straight, broken = str(tmp_path / "straight"), str(tmp_path / "broken")
    assert_resumed_equals_straight("train_unet_cifar.py", "LIFT_KILL_AT_STEP", straight, broken, [
        "--kd", "place", "--device", "cpu", "--threads", "1", "--sample-every", "100", "--fid-samples", "0"],
        launcher=torchrun(29527))
    state = torch.load(os.path.join(broken, "ckpt_00000006", "state.pt"), weights_only=False)
    ranks = state["rng_ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])     # streams seeded seed + rank
    assert torch.equal(state["rng"]["torch"], ranks[0]["torch"])                         # rank 0's, for old readers


def test_heldout_set_is_fixed_unseen_and_zero_for_the_teacher():
    """--eval-every's set: the same for every run, none of its images in a training set, and a student that is the
    teacher has distance 0 to it and the teacher's own diffusion loss."""
    import train_unet_cifar as tu
    from data import load_images
    from lift import outkd_loss
    args = tu.parse_args(["--preset", "smoke"])
    x0, t, noise = tu.heldout_set(args, None, 32, n=64)
    again = tu.heldout_set(args, None, 32, n=64)
    assert all(torch.equal(a, b) for a, b in zip((x0, t, noise), again)) and t.min() >= 0 and t.max() < 1000
    images = tu.to_model_range(load_images(None, 32, 2000, seed=0)[0])
    assert torch.cdist(x0.flatten(1), images.flatten(1)).min() > 1.0
    teacher = load_unet(tu.PRESETS["tiny"]["teacher"]).eval()
    a = torch.rand(len(t), 1, 1, 1, generator=torch.Generator().manual_seed(0))
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    with torch.no_grad():
        eps = teacher(xt, t).sample
    loss, dist = tu.heldout_losses(teacher, xt, t, noise, eps, "sum", batch=24)
    assert dist < 1e-8 and abs(loss - outkd_loss(eps, noise, reduction="sum").loss.item()) < 1e-3 * loss


def test_ddp_on_cpu_two_processes(tmp_path):
    assert_ddp_smoke("train_unet_cifar.py", str(tmp_path / "ddp"), 29517)


def test_teacher_dir_width_and_pruned_students(tmp_path):
    torch.manual_seed(0)
    UNet2DModel(**TINY).save_pretrained(tmp_path / "teacher")
    for flag, low, high in ((["--student-width", "0.5"], 20, 35), (["--prune-ratio", "0.5"], 20, 35),
                            (["--student-width", "0.125"], 1, 3)):    # about (1/2)^2 and (1/8)^2 of the teacher
        out = str(tmp_path / "".join(flag))
        p = run("--teacher", str(tmp_path / "teacher"), *flag, "--kd", "lift", "--out", out, "--fid-samples", "0")
        assert p.returncode == 0, p.stderr[-2000:]
        metrics = json.load(open(os.path.join(out, "metrics.json")))
        assert low < metrics["percent_of_teacher"] < high
        narrow = "warning: the student's full-resolution blocks have 2 channels, fewer than the image's 3"
        assert (narrow in p.stdout) == (flag[1] == "0.125")              # 16 / 8 = 2 channels for 3 image channels
    p = run("--sample-from", str(tmp_path / "--prune-ratio0.5" / "student"), "--n-samples", "4", "--ddim-steps", "2",
            "--out", str(tmp_path / "grid"))
    assert p.returncode == 0 and os.path.exists(tmp_path / "grid" / "samples.png")


def test_cifar_tarball_trains(tmp_path):
    _cifar_tarball(tmp_path / "cifar-10-python.tar.gz", n_per_batch=4)
    out = str(tmp_path / "c")
    p = run("--data-dir", str(tmp_path / "cifar-10-python.tar.gz"), "--batch-size", "4", "--fid-samples", "0",
            "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(rows(out)) == 4


def test_celeba_preset_end_to_end_offline(tmp_path):
    """The paper's Table 1 path on a tiny random checkpoint in DDIM's layout and a folder of 178 x 218 images:
    converted teacher, 90 % Taylor-pruned student, the authors' recipe; FID against the folder's own statistics, which
    offline (no Inception weights) leaves fid null with the reason."""
    from PIL import Image
    from test_ddim_checkpoint import prefixed, random_ddpm
    raw, ema = random_ddpm(0, resolution=64), random_ddpm(1, resolution=64)
    torch.save([prefixed(raw.state_dict()), {}, 1, 10, prefixed(ema.state_dict())], tmp_path / "ckpt.pth")
    (tmp_path / "img_align_celeba").mkdir()
    for i in range(8):
        Image.new("RGB", (178, 218), (30 * i, 100, 200)).save(tmp_path / "img_align_celeba" / f"{i:06d}.jpg")
    out = str(tmp_path / "run")
    p = run_script("train_unet_cifar.py", "--preset", "celeba", "--teacher", str(tmp_path / "ckpt.pth"),
                   "--data-dir", str(tmp_path / "img_align_celeba"), "--steps", "2", "--batch-size", "4",
                   "--taylor-t-stride", "250", "--taylor-batch", "4", "--ddim-steps", "2", "--fid-samples", "4",
                   "--sample-every", "100", "--ckpt-every", "2", "--log-every", "1", "--out", out,
                   env={"TMPDIR": str(tmp_path), "TORCH_HOME": str(tmp_path / "torch")})   # no Inception weights
    assert p.returncode == 0, p.stderr[-2000:]
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["fid"] is None and "Inception" in metrics["fid_unavailable"] and "warning: no FID" in p.stdout
    assert metrics["clip_sample"] is False and metrics["ddim_steps"] == 2 and metrics["sampler"] == "DDIM"
    a = metrics["args"]
    assert (a["prune_ratio"], a["crop"], a["flip"], a["antithetic"], a["ema_warmup"], a["place_fitnet"]) == \
        (0.9, "celeba", 1, 1, 0, 1)
    assert metrics["student_params"] < metrics["teacher_params"] and len(rows(out)) == 2
    student = load_unet(os.path.join(out, "student"))
    assert models.count_params(student) == metrics["student_params"] and student.config.sample_size == 64


@pytest.mark.parametrize("args, message", [
    (["--data-dir", "/no/such/dir"], "--data-dir /no/such/dir does not exist"),
    (["--prune-ratio", "1.5"], "--prune-ratio 1.5 must be in (0, 1)"),
    (["--student-width", "0"], "--student-width 0.0 must be > 0"),
    (["--batch-size", "0"], "--batch-size 0 must be >= 1"),
    (["--teacher", __file__], "cannot load"),                          # a file that is no checkpoint
    (["--preset", "celeba", "--data-dir", "/tmp"], "--preset celeba needs --teacher"),
    (["--teacher", "someone/not-cached"], "HF_HUB_OFFLINE is set"),
    (["--group-size", "48"], "group_size=48 does not divide the 1024 spatial elements"),
    (["--batch-size", "100000"], "larger than the dataset"),
    (["--steps", "-5"], "--steps -5 must be >= 1"),
    (["--ckpt-every", "0"], "--ckpt-every 0 must be >= 1"),
    (["--out", __file__], "is a file, not a run directory"),
])
def test_bad_input_one_line_and_nonzero(args, message):
    assert_one_line_error(run("--out", "/tmp/lift_bad_input", *args), message)    # a bad --out given wins


def test_grad_accum_is_the_same_gradient_as_one_batch(tmp_path):
    """--grad-accum 2 (two parts of 4, one backward each) against one batch of 8: the first step's pre-clip gradient
    norm agrees to float error (OutKD, no dropout: nothing but the split differs), and a batch that does not split
    into the parts is one line."""
    norms = []
    for accum in ("1", "2"):
        out = str(tmp_path / accum)
        p = run("--kd", "outkd", "--dropout", "0", "--grad-accum", accum, "--steps", "2", "--fid-samples", "0",
                "--out", out)
        assert p.returncode == 0, p.stderr[-2000:]
        norms.append(float(rows(out)[0]["grad_norm_max"]))
    assert abs(norms[0] - norms[1]) <= 1e-4 * norms[0]
    assert_one_line_error(run("--grad-accum", "3", "--out", str(tmp_path / "bad")),
                          "--batch-size 8 is not divisible by the 1 processes x --grad-accum 3")


def test_tensorboard_tracker_holds_the_logs_values(tmp_path):
    """--tracker tensorboard: every numeric column of log.csv and eval.csv, at its step, in OUT/tensorboard/."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = str(tmp_path / "run")
    p = run("--tracker", "tensorboard", "--eval-every", "2", "--fid-samples", "0", "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    events = EventAccumulator(os.path.join(out, "tensorboard")).Reload()
    for prefix, name in (("train", "log.csv"), ("heldout", "eval.csv")):
        logged = list(csv.DictReader(open(os.path.join(out, name))))
        for column in ("diffusion", "kd", "w") if prefix == "train" else ("diffusion", "ema_teacher_dist"):
            scalars = [(e.step, e.value) for e in events.Scalars(f"{prefix}/{column}")]
            assert [s for s, _ in scalars] == [int(r["step"]) for r in logged]
            assert all(v == pytest.approx(float(r[column]), rel=1e-6) for (_, v), r in zip(scalars, logged))
