"""train_dit_latent.py: its pieces (depth students, DiT sizes, label dropout, L_vlb) and the script end to end."""
import json
import math
import os
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDPMScheduler, DiTTransformer2DModel

from common import lr_at
from models import DIT_XL2_CONFIG, block_alignment, depth_student, dit_params, evenly_spaced
from train_dit_latent import DIT_SCHEDULE, drop_labels, no_internal_label_dropout, vlb_loss
from helpers import (LATENT_BAD_FLAGS, assert_ddp_smoke, assert_offline_fid_is_null, assert_one_line_error,
                     assert_resumed_equals_straight, rows, run_kd_method, run_script)

TINY_DIT = dict(num_attention_heads=2, attention_head_dim=8, in_channels=12, out_channels=24, num_layers=4,
                sample_size=16, patch_size=2, num_embeds_ada_norm=10, norm_type="ada_norm_zero",
                norm_elementwise_affine=False, activation_fn="gelu-approximate")


def run(*args, env=None):
    return run_script("train_dit_latent.py", *args, env=env)


def random_dit(seed=0, **overrides):
    """A small DiT with every weight random (diffusers zero-initialises adaLN-Zero, which would hide mistakes)."""
    torch.manual_seed(seed)
    model = DiTTransformer2DModel(**{**TINY_DIT, **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


def test_paper_dit_sizes_on_meta():
    """DiT-XL/2 and TinyFusion's D14/D7/D4 at the sizes the papers list (675 M; 340.5 M, 173.1 M, 101.4 M)."""
    with torch.device("meta"):
        teacher = DiTTransformer2DModel(**DIT_XL2_CONFIG)
        sizes = {n: dit_params(depth_student(teacher, evenly_spaced(28, n))) for n in (14, 7, 4)}
    assert round(dit_params(teacher) / 1e6) == 675
    assert {n: round(s / 1e6, 1) for n, s in sizes.items()} == {14: 340.5, 7: 173.1, 4: 101.4}


def test_evenly_spaced_and_alignment():
    assert evenly_spaced(28, 14) == list(range(0, 28, 2)) and evenly_spaced(28, 7) == list(range(0, 28, 4))
    assert evenly_spaced(8, 8) == list(range(8)) and evenly_spaced(8, 1) == [0]
    assert block_alignment([0, 2, 4, 6], 8) == [1, 3, 5, 7]           # each student block stands for two
    with pytest.raises(ValueError, match="between 1 and"):
        evenly_spaced(8, 9)


def test_depth_student_copies_kept_blocks_and_full_depth_is_the_teacher():
    teacher = random_dit()
    student = depth_student(teacher, [1, 3])
    t, s = teacher.state_dict(), student.state_dict()
    assert all(torch.equal(s[k], t[k.replace("transformer_blocks.0.", "transformer_blocks.1.")])
               for k in s if k.startswith("transformer_blocks.0."))
    assert all(torch.equal(s[k], t[k.replace("transformer_blocks.1.", "transformer_blocks.3.")])
               for k in s if k.startswith("transformer_blocks.1."))
    assert all(torch.equal(s[k], t[k]) for k in s if not k.startswith("transformer_blocks."))
    x, step, y = torch.randn(3, 12, 16, 16), torch.tensor([5, 500, 999]), torch.tensor([0, 4, 9])
    full = depth_student(teacher, [0, 1, 2, 3])
    with torch.no_grad():
        assert torch.equal(full(x, timestep=step, class_labels=y).sample,
                           teacher(x, timestep=step, class_labels=y).sample)
        assert not torch.allclose(student(x, timestep=step, class_labels=y).sample,
                                  teacher(x, timestep=step, class_labels=y).sample)


def test_teacher_and_student_see_the_same_dropped_labels():
    teacher, student = random_dit(), depth_student(random_dit(), [0, 2])
    seen = {}
    for name, model in (("teacher", teacher), ("student", student)):
        table = model.transformer_blocks[0].norm1.emb.class_embedder.embedding_table
        table.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, i[0].clone()))
    x, step = torch.randn(64, 12, 16, 16), torch.randint(0, 1000, (64,))
    y = drop_labels(torch.randint(0, 10, (64,)), 10, 0.5, torch.Generator().manual_seed(0))
    for block in student.transformer_blocks:                      # a high internal rate makes a mismatch certain
        block.norm1.emb.class_embedder.dropout_prob = 0.5
    student.train()(x, timestep=step, class_labels=y)
    teacher(x, timestep=step, class_labels=y)
    assert not torch.equal(seen["student"], seen["teacher"])        # diffusers' own dropout would desynchronise them
    no_internal_label_dropout(student)(x, timestep=step, class_labels=y)
    assert torch.equal(seen["student"], seen["teacher"]) and torch.equal(seen["teacher"], y)
    assert 0 < (y == 10).sum() < 64                                  # the null class is num_classes


def test_drop_labels_rate_and_null_class():
    y = drop_labels(torch.zeros(100_000, dtype=torch.long), 10, 0.1, torch.Generator().manual_seed(1))
    assert set(y.unique().tolist()) == {0, 10} and abs((y == 10).float().mean().item() - 0.1) < 0.005


def test_vlb_zero_at_the_true_posterior_and_trains_only_v():
    scheduler = DDPMScheduler(**DIT_SCHEDULE)
    torch.manual_seed(0)
    x0, noise = torch.randn(6, 4, 8, 8, dtype=torch.float64), torch.randn(6, 4, 8, 8, dtype=torch.float64)
    t = torch.tensor([1, 10, 100, 500, 900, 999])
    a = scheduler.alphas_cumprod.double()[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    v = torch.full_like(x0, -1.0, requires_grad=True)       # frac 0: the clipped posterior variance, exact for t >= 1
    kl = vlb_loss(v, noise, x0, xt, t, scheduler)
    assert kl.shape == (6,) and kl.abs().max() < 1e-9
    eps = (noise + 0.3 * torch.randn_like(noise)).requires_grad_(True)
    v2 = torch.zeros_like(x0, requires_grad=True)
    loss = vlb_loss(v2, eps, x0, xt, t, scheduler)
    assert (loss > 0).all()
    loss.sum().backward()
    assert eps.grad is None and v2.grad.abs().sum() > 0            # eps is held fixed: L_vlb only trains v
    # at t = 0 it is the decoder NLL in bits per dimension: positive, and lower for a closer mean
    t0 = torch.zeros(2, dtype=torch.long)
    near = vlb_loss(torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8), x0[:2].clamp(-1, 1), x0[:2].clamp(-1, 1), t0,
                    scheduler)
    assert (near > 0).all() and (near < 8 / math.log(2)).all()


@pytest.mark.parametrize("kd", ["none", "outkd", "featkd", "outkd+featkd", "lift", "place"])
def test_every_kd_method_end_to_end(kd, tmp_path):
    out = str(tmp_path / kd)
    log, metrics = run_kd_method("train_dit_latent.py", kd, out)
    assert all(float(r["vlb"]) > 0 for r in log)
    assert metrics["kept_blocks"] == [0, 4] and metrics["percent_of_teacher"] < 50
    assert 0 <= metrics["class_accuracy"] <= 1 and metrics["shape_fd"] > 0 and metrics["guidance"] == 1.5
    student = DiTTransformer2DModel.from_pretrained(os.path.join(out, "student"))
    assert student.config.num_layers == 2 and dit_params(student) == metrics["student_params"]
    card = open(os.path.join(out, "student", "README.md")).read()
    assert f"| class_accuracy | {metrics['class_accuracy']} |" in card and "train_dit_latent.py --preset smoke" in card
    assert os.path.getsize(os.path.join(out, "curves.png")) > 10_000


def test_ddp_on_cpu_two_processes(tmp_path):
    assert_ddp_smoke("train_dit_latent.py", str(tmp_path / "ddp"), 29518)


@pytest.mark.parametrize("fault", ["LIFT_KILL_AT_STEP", "LIFT_INTERRUPT_AT_STEP"])
def test_killed_or_interrupted_and_resumed_equals_straight(fault, tmp_path):
    assert_resumed_equals_straight("train_dit_latent.py", fault, str(tmp_path / "straight"), str(tmp_path / "broken"),
                                   ["--kd", "place", "--sample-every", "100", "--fid-samples", "0",
                                    "--lr-schedule", "cosine"])
    cosine = SimpleNamespace(lr=1e-3, steps=6, lr_schedule="cosine")        # the smoke preset's lr; the log shows
    assert [float(r["lr"]) for r in rows(str(tmp_path / "straight"))] == [   # the optimizer's, so the schedule
        pytest.approx(lr_at(cosine, step), rel=1e-5) for step in range(6)]   # reached it


def test_offline_fid_is_null_with_the_reason(tmp_path):
    assert_offline_fid_is_null("train_dit_latent.py", tmp_path)


def test_transformer_only_teacher_dir_and_sampling(tmp_path):
    random_dit(num_layers=6).save_pretrained(tmp_path / "teacher")
    out = str(tmp_path / "run")
    p = run("--teacher", str(tmp_path / "teacher"), "--keep-blocks", "0,3,5", "--kd", "lift", "--fid-samples", "0",
            "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    student = DiTTransformer2DModel.from_pretrained(os.path.join(out, "student"))
    assert (student.config.num_layers == 3
            and json.load(open(os.path.join(out, "args.json")))["keep_blocks"] == [0, 3, 5])
    p = run("--sample-from", os.path.join(out, "student"), "--vae", "pixel-unshuffle", "--sample-steps", "2",
            "--out", str(tmp_path / "grid"))
    assert p.returncode == 0 and os.path.exists(tmp_path / "grid" / "samples.png")


def test_image_folder_latent_cache(tmp_path):
    from PIL import Image
    for k, name in enumerate(["cat", "dog"]):
        os.makedirs(tmp_path / "data" / name)
        for i in range(4):
            Image.new("RGB", (40, 36), (60 * k + 10 * i, 100, 200)).save(tmp_path / "data" / name / f"{i}.png")
    out = str(tmp_path / "run")
    p = run("--data-dir", str(tmp_path / "data"), "--batch-size", "4", "--flip", "1", "--fid-samples", "0",
            "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    import numpy as np
    cache = np.load(os.path.join(out, "latents.npy"))
    assert cache.shape == (8, 2, 12, 16, 16) and cache.dtype == np.float16              # each image and its mirror
    assert float(cache[0].min()) >= -1 and float(cache[0].max()) <= 1   # the stand-in keeps pixels in [-1, 1]


@pytest.mark.parametrize("args, message", [
    (["--keep-blocks", "5,3"], "--keep-blocks [5, 3]: needs distinct increasing"),
    (["--student-depth", "9"], "--student-depth 9 must be between 1 and the teacher's 8 blocks"),
    (["--teacher", "someone/not-cached"], "HF_HUB_OFFLINE is set"),
    (["--vae", "someone/no-vae"], "HF_HUB_OFFLINE is set"),
    (["--group-size", "48"], "does not divide the 256 spatial elements"),
    (["--data-dir", "/no/such/dir", "--fid-samples", "0"], "--data-dir /no/such/dir is not a folder of images"),
    (["--data-dir", "/no/such/dir"], "FID needs reference statistics: pass --fid-stats"),          # before training
    (["--class-dropout", "1.5"], "--class-dropout 1.5 must be in [0, 1]"),
] + LATENT_BAD_FLAGS)
def test_bad_input_one_line_and_nonzero(args, message):
    assert_one_line_error(run("--out", "/tmp/lift_bad_input_dit", *args), message)    # a bad --out given wins


def test_paper_preset_samples_and_scores_as_dit_and_weighs_losses_as_the_authors():
    """The paper preset: DiT's sample_ddp.py settings (250 DDPM steps spaced as DiT's respacing, guidance on the
    first 3 latent channels, random labels, the TF Inception) and the authors' DiT loss (per-element means, squared
    coarse term, 0.1 diffusion + 0.9 KD scaled by 10 with the clip scaled alike)."""
    import train_dit_latent as td
    args = td.parse_args(["--preset", "paper"])
    assert (args.loss_scale, args.coarse, args.kd_weight, args.clip) == ("mean", "l2", 9.0, 10.0)
    assert (args.sampler, args.sample_steps, args.guidance, args.guided_channels) == ("ddpm", 250, 1.5, 3)
    assert (args.fid_labels, args.fid_mode, args.flip) == ("random", "legacy_tensorflow", 1)
    scheduler = td.make_scheduler(args, learned_variance=True)
    scheduler.set_timesteps(args.sample_steps)
    stride = 999 / 249                               # DiT's space_timesteps(1000, "250"): round(i * stride), i < 250
    assert scheduler.timesteps.tolist() == [round(i * stride) for i in range(250)][::-1]
    assert int(scheduler.previous_timestep(999)) == 995           # each step goes to the next kept timestep
    tiny = td.parse_args(["--preset", "tiny", "--spacing", "linspace"])
    assert (tiny.loss_scale, tiny.coarse, tiny.guided_channels, tiny.spacing) == ("sum", "l1", 0, "linspace")


def test_guidance_only_on_the_guided_channels():
    """guided_sample with guided_channels=3: channels 0-2 get uncond + g (cond - uncond), channel 3 the conditional
    prediction as it is (DiT's sampler guides eps[:, :3] only)."""
    from metrics import guided_sample, sample_generators
    seen = []

    class Recorder:                                   # a one-step scheduler that keeps what it is given
        timesteps = torch.tensor([7])

        def set_timesteps(self, steps, device=None):
            pass

        def step(self, out, t, x, generator=None):
            seen.append(out)
            return type("Out", (), {"prev_sample": x})

    cond, uncond = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    predict = lambda x, t: torch.cat([cond, uncond])
    for channels, guided in ((3, 3), (None, 4)):
        guided_sample(predict, Recorder(), sample_generators(0, 0, 2), (2, 4, 4, 4), 1, 2.5, channels)
        out = seen.pop()
        assert torch.allclose(out[:, :guided], uncond[:, :guided] + 2.5 * (cond[:, :guided] - uncond[:, :guided]))
        assert torch.equal(out[:, guided:], cond[:, guided:])


def test_squared_coarse_term_reaches_the_loss():
    import argparse
    from common import kd_loss
    from place import place_loss
    s, t = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16)
    for coarse in ("l1", "l2"):
        args = argparse.Namespace(kd="place", group_size=16, loss_scale="mean", coarse=coarse)
        kd, _ = kd_loss(args, s, t)
        assert torch.equal(kd, place_loss(s, t, 16, reduction="mean", coarse=coarse).loss)
    assert not torch.equal(kd, place_loss(s, t, 16, reduction="mean", coarse="l1").loss)
