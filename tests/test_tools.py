"""Properties of the shared pieces: data, checkpoints, EMA, students, feature hooks, loading."""
import io
import json
import os
import pickle
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DiTTransformer2DModel, SD3Transformer2DModel, UNet2DModel
from PIL import Image

import common
import data
import metrics
import models
from helpers import REPO

TINY = dict(models.DDPM_CIFAR10_CONFIG, block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8,
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


# ---------------------------------------------------------------- data
def test_embedded_dataset_is_deterministic_and_labelled():
    a, la, ca = data.make_shapes(64, seed=3)
    b, lb, cb = data.make_shapes(64, seed=3)
    c, _, _ = data.make_shapes(64, seed=4)
    assert a.shape == (64, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and torch.equal(la, lb) and ca == cb and not torch.equal(a, c)
    assert set(la.tolist()) <= set(range(10)) and len(set(la.tolist())) > 5
    assert all(cap.split()[-1] == data.SHAPES[k] for cap, k in zip(ca, la.tolist()))


def test_shape_classifier_recognises_the_embedded_shapes():
    images, labels, _ = data.make_shapes(500, seed=12345)
    _, preds = metrics.classify(metrics.load_classifier(), images)
    assert (preds == labels).float().mean() > 0.95


def test_shape_fd_is_small_for_real_images_and_large_for_noise():
    clf = metrics.load_classifier()
    real, _, _ = data.make_shapes(1000, seed=777)
    noise = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fd_real = metrics.shape_metrics(real, clf, n_reference=1000)["shape_fd"]
    fd_noise = metrics.shape_metrics(noise, clf, n_reference=1000)["shape_fd"]
    assert fd_real < 0.05 * fd_noise


def test_batches_are_a_function_of_step():
    first = [data.batch_indices(100, 8, s, seed=1) for s in range(30)]
    again = [data.batch_indices(100, 8, s, seed=1) for s in range(30)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    epoch = torch.cat(first[:12])                                    # 12 full batches per epoch
    assert len(set(epoch.tolist())) == 96                            # no repeats within an epoch
    parts = [data.batch_indices(100, 8, 5, seed=1, rank=r, world=2) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == sorted(first[5].tolist())
    with pytest.raises(data.DataError, match="larger than the dataset"):
        data.batch_indices(4, 8, 0, seed=0)


def _cifar_tarball(path, n_per_batch=4):
    """A CIFAR-10 python tarball in the real format with known contents."""
    rng = np.random.default_rng(0)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            d = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n_per_batch).tolist()}
            batches[i] = d
            raw = pickle.dumps(d)
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{i}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return batches


def test_cifar_reader_tarball_and_folder(tmp_path):
    batches = _cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    images, labels = data.read_cifar10(str(tmp_path / "cifar-10-python.tar.gz"))
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images[4], torch.from_numpy(batches[2][b"data"][0].reshape(3, 32, 32)))
    assert labels.tolist() == sum((batches[i][b"labels"] for i in range(1, 6)), [])
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder_images, _ = data.read_cifar10(str(tmp_path / "x"))
    assert torch.equal(folder_images, images)
    loaded, _ = data.load_images(str(tmp_path / "x"), 32, 0)
    assert torch.equal(loaded, images)


def test_image_folder_resizes_and_crops(tmp_path):
    for cls, colour in [("cats", (255, 0, 0)), ("dogs", (0, 0, 255))]:
        (tmp_path / cls).mkdir()
        for i, size in enumerate([(40, 60), (64, 32)]):
            Image.new("RGB", size, colour).save(tmp_path / cls / f"{i}.png")
    images, labels, classes = data.read_image_folder(str(tmp_path), 16)
    assert images.shape == (4, 3, 16, 16) and classes == ["cats", "dogs"] and labels.tolist() == [0, 0, 1, 1]
    assert images[0, 0].float().mean() > 250 and images[3, 2].float().mean() > 250


def test_celeba_crop_is_ddims_box(tmp_path):
    img = np.zeros((218, 178, 3), np.uint8)                          # CelebA's aligned size: 178 wide, 218 high
    img[57:57 + 128, 25:25 + 128] = (10, 200, 30)                    # the box DDIM crops: rows 57.., columns 25..
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.new("RGB", (100, 100)).save(tmp_path / "small.png")
    x = data._load_image(str(tmp_path / "a.png"), 64, data.CELEBA_CROP)
    assert (x.shape == (3, 64, 64)
            and x[:, 1:-1, 1:-1].float().sub(torch.tensor([10., 200., 30.]).view(3, 1, 1)).abs().max() <= 1)
    with pytest.raises(data.DataError, match="smaller than the crop box"):
        data._load_image(str(tmp_path / "small.png"), 64, data.CELEBA_CROP)


def test_teacher_reference_is_read_only_for_the_same_settings_and_weights(tmp_path):
    unet = UNet2DModel(**TINY)
    settings = dict(ddim_steps=50, n_samples=1000)
    with open(tmp_path / "reference_metrics.json", "w") as f:
        json.dump(dict(settings, weights=metrics.weights_digest(unet), shape_fd=1.5), f)
    fresh = lambda: dict(shape_fd=7.0)
    assert metrics.cached_reference(str(tmp_path), unet, settings, fresh)["shape_fd"] == 1.5
    assert metrics.cached_reference(str(tmp_path), unet, dict(settings, ddim_steps=20), fresh)["shape_fd"] == 7.0
    with torch.no_grad():
        next(unet.parameters())[0] += 1e-3                                  # a retrained teacher in the same folder
    assert metrics.cached_reference(str(tmp_path), unet, settings, fresh)["shape_fd"] == 7.0


@pytest.mark.parametrize("name, cls", [("tiny_unet", UNet2DModel), ("tiny_dit", DiTTransformer2DModel),
                                       ("tiny_sd3", SD3Transformer2DModel)])
def test_shipped_reference_metrics_belong_to_the_shipped_weights(name, cls):
    folder = os.path.join(REPO, "assets", name)
    with open(os.path.join(folder, "reference_metrics.json")) as f:
        known = json.load(f)
    assert known["weights"] == metrics.weights_digest(cls.from_pretrained(folder))


def test_folder_fid_reference_is_its_own_images(tmp_path):
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten()).eval()  # 48-d stand-in
    images = (torch.rand(64, 3, 16, 16) * 255).byte()
    path = metrics.reference_stats(images, str(tmp_path / "stats.npz"), "64 folder images", extractor=extractor,
                                   batch_size=20)
    same = metrics.write_samples(lambda first, b: images[first:first + b], 64, str(tmp_path / "same"), key={})
    assert metrics.fid(same, stats=path, extractor=extractor, batch_size=20) == pytest.approx(0, abs=1e-3)
    others = metrics.write_samples(lambda first, b: (torch.rand(b, 3, 16, 16) * 128).byte(), 64,
                                   str(tmp_path / "others"), key={})
    assert metrics.fid(others, stats=path, extractor=extractor, batch_size=20) > 1
    mtime = os.path.getmtime(path)
    metrics.reference_stats(images, path, "64 folder images", extractor=extractor)   # same reference: reused
    assert os.path.getmtime(path) == mtime
    metrics.reference_stats(images[:32], path, "32 folder images", extractor=extractor, batch_size=20)
    assert int(np.load(path)["n"]) == 32                             # another reference: recomputed


def test_bad_data_dirs_raise(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_images(str(tmp_path / "nope"), 32, 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no images"):
        data.load_images(str(tmp_path / "empty"), 32, 0)
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(data.DataError):
        data.read_cifar10(str(tmp_path / "bad.tar.gz"))


# ---------------------------------------------------------------- checkpoints, EMA
def test_checkpoint_roundtrip_and_interrupted_save(tmp_path):
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    args = type("A", (), {})()
    common.save_checkpoint(str(tmp_path), 7, model, ema, opt, args)
    expected_rng = torch.rand(3)
    os.makedirs(tmp_path / "ckpt_00000009.tmp")                     # a save killed half-way
    (tmp_path / "ckpt_00000009.tmp" / "model.safetensors").write_bytes(b"partial")
    m2, e2 = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    o2 = torch.optim.Adam(m2.parameters())
    assert common.load_checkpoint(str(tmp_path), m2, e2, o2, "cpu") == 7
    assert torch.equal(m2.weight, model.weight) and torch.equal(e2.bias, ema.bias)
    assert torch.equal(o2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(3), expected_rng)                 # the RNG continues where it was saved
    assert common.load_checkpoint(str(tmp_path / "empty"), m2, e2, o2, "cpu") == 0


def test_unreadable_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    saved = {}
    for step in (2, 4):
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
        common.save_checkpoint(str(tmp_path), step, model, ema, opt, type("A", (), {})())
        saved[step] = (model.weight.clone(), opt.state_dict()["state"][0]["exp_avg"].clone(), torch.get_rng_state())
    newest = tmp_path / "ckpt_00000004" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])                    # truncated, as by a full disk or a bad copy
    m2, e2 = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    o2 = torch.optim.Adam(m2.parameters())
    assert common.load_checkpoint(str(tmp_path), m2, e2, o2, "cpu") == 2      # as if resumed from step 2
    weight, exp_avg, rng = saved[2]
    assert torch.equal(m2.weight, weight) and torch.equal(o2.state_dict()["state"][0]["exp_avg"], exp_avg)
    assert torch.equal(torch.get_rng_state(), rng)
    assert "checkpoint " + str(tmp_path / "ckpt_00000004") + " is unreadable" in capsys.readouterr().err
    (tmp_path / "ckpt_00000002" / "state.pt").write_bytes(b"junk")
    with pytest.raises(SystemExit):                                  # nothing readable: one line, not a fresh start
        common.load_checkpoint(str(tmp_path), m2, e2, o2, "cpu")
    assert "no readable checkpoint" in capsys.readouterr().err


def test_resume_takes_this_process_rng_or_reseeds_for_another_process_count(capsys):
    """A single process resumes its own stream from rng_ranks, and rank 0's `rng` from a checkpoint older than
    rng_ranks; a checkpoint of 2 processes gives it fresh streams seeded by (seed, rank, step), with one warning."""
    torch.manual_seed(1)
    mine = common.rng_state()
    expected = torch.rand(3)
    torch.manual_seed(2)
    other = common.rng_state()
    for state in (dict(step=4, rng=mine, rng_ranks=[mine], args={}), dict(step=4, rng=mine, args={})):
        common.restore_rng(state)
        assert torch.equal(torch.rand(3), expected)
    assert capsys.readouterr().err == ""
    two = dict(step=4, rng=mine, rng_ranks=[mine, other], args=dict(seed=0))
    draws = []
    for state in (two, two, dict(two, step=6)):
        common.restore_rng(state)
        draws.append(torch.rand(3))
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])      # a function of the step
    assert not torch.equal(draws[0], expected)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and err[0].startswith("warning: the checkpoint of step 4 was written by 2 processes, not 1")


def test_ema_warms_up_then_follows_decay():
    ema, model = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    ema.weight.data.fill_(0.0)
    model.weight.data.fill_(1.0)
    common.ema_update(ema, model, 0.999, step=0)                    # d = min(0.999, 1/10) = 0.1
    assert ema.weight.item() == pytest.approx(0.9)
    common.ema_update(ema, model, 0.5, step=10_000)                 # d = 0.5
    assert ema.weight.item() == pytest.approx(0.95)
    ema.weight.data.fill_(0.0)
    common.ema_update(ema, model, 0.999, step=0, warmup=False)      # the authors': d = 0.999 from the first step
    assert ema.weight.item() == pytest.approx(0.001)


def test_cosine_lr_falls_from_lr_to_zero_and_constant_stays():
    cosine = SimpleNamespace(lr=1e-3, steps=100, lr_schedule="cosine")
    lrs = [common.lr_at(cosine, step) for step in range(100)]
    assert lrs[0] == 1e-3 and lrs[50] == pytest.approx(5e-4, rel=1e-12) and 0 < lrs[-1] < 1e-6
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    common.set_lr(optimizer, cosine, 25)
    assert optimizer.param_groups[0]["lr"] == lrs[25]
    assert {common.lr_at(SimpleNamespace(lr=1e-3, steps=100, lr_schedule="constant"), s) for s in range(100)} == {1e-3}


# ---------------------------------------------------------------- the authors' DDPM recipe
@pytest.mark.parametrize("n", [2, 7, 96])
def test_antithetic_timesteps_come_in_pairs_summing_to_T_minus_1(n):
    torch.manual_seed(0)
    t = common.antithetic_timesteps(n, 1000, "cpu")
    half = n // 2 + 1                                                # the authors draw n // 2 + 1, then mirror
    assert len(t) == n and t.min() >= 0 and t.max() <= 999
    assert all(t[i] + t[i + half] == 999 for i in range(n - half))


def test_random_flip_mirrors_about_half_the_images():
    torch.manual_seed(0)
    x = torch.randn(1000, 3, 4, 4)
    y = common.random_flip(x)
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all()) and 420 < int(mirrored.sum()) < 580


def test_fitnet_taps_and_adapters_are_the_authors():
    with torch.device("meta"):
        cifar, celeba = UNet2DModel(**models.DDPM_CIFAR10_CONFIG), UNet2DModel(**models.DDIM_CELEBA64_CONFIG)
    assert len(models.unet_feature_layers(cifar)) == 34 and len(models.unet_feature_layers(celeba)) == 41
    torch.manual_seed(0)
    teacher = UNet2DModel(**TINY).eval()
    student = models.prune_unet(teacher, 0.5, "magnitude")
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    hooks = models.FeatureHooks(models.unet_feature_layers(teacher))
    with torch.no_grad():
        teacher(x, t)
    feats_t = hooks.pop()
    model = models.Distillee(student, models.unet_feature_layers(student), feats_t, ((x[:1], t[:1]), {}), fitnet=True)
    assert all(isinstance(a, torch.nn.Conv2d) and a.bias is None and a.kernel_size == (1, 1) for a in model.adapters)
    weights = torch.cat([a.weight.flatten() for a in model.adapters])
    assert weights.abs().max() <= 0.005 and weights.abs().max() > 0.004     # U(-0.005, 0.005)
    _, feats_s = model(x, t)
    assert [f.shape for f in feats_s] == [f.shape for f in feats_t]


def test_feature_term_weights_alone_and_beside_an_output_loss():
    torch.manual_seed(0)
    eps_s, eps_t = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    fs, ft = [torch.randn(2, 4, 8, 8)], [torch.randn(2, 4, 8, 8)]
    feat = ((fs[0] - ft[0]) ** 2).sum((1, 2, 3)).mean()              # FitNet: summed per sample, batch mean
    args = lambda kd: type("A", (), dict(kd=kd, loss_scale="sum", group_size=16, coarse="l1"))()
    out = ((eps_s - eps_t) ** 2).sum((1, 2, 3)).mean()
    place = common.kd_loss(args("place"), eps_s, eps_t)[0]
    assert torch.allclose(common.kd_loss(args("featkd"), eps_s, eps_t, fs, ft, 1e-6)[0], feat)
    assert torch.allclose(common.kd_loss(args("outkd+featkd"), eps_s, eps_t, fs, ft, 1e-6)[0], out + 1e-6 * feat)
    assert torch.allclose(common.kd_loss(args("place"), eps_s, eps_t, fs, ft, 1e-6)[0], place + 1e-6 * feat)


# ---------------------------------------------------------------- students and loading
def test_paper_teacher_and_width_student_sizes():
    with torch.device("meta"):
        teacher = UNet2DModel(**models.DDPM_CIFAR10_CONFIG)
        student = models.width_student(models.DDPM_CIFAR10_CONFIG, 1 / 8)
    t, s = models.count_params(teacher), models.count_params(student)
    assert round(t / 1e6, 1) == 35.7                               # google/ddpm-cifar10-32
    assert 1.5 <= 100 * s / t <= 1.7 and student.config.block_out_channels == (16, 32, 32, 32)


def test_paper_width_student_is_a_plain_diffusers_model(tmp_path):
    student = models.width_student(models.DDPM_CIFAR10_CONFIG, 1 / 8)
    assert models.count_params(student) == 565_315                  # 1.58 % of 35.7 M, as PAPER.md states
    student.save_pretrained(tmp_path / "s")
    again = UNet2DModel.from_pretrained(tmp_path / "s").eval()
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([10])
    with torch.no_grad():                                            # same weights; kernels may differ in rounding
        torch.testing.assert_close(again(x, t).sample, student.eval()(x, t).sample, rtol=1e-5, atol=1e-6)


def test_very_narrow_student_keeps_teacher_time_features(tmp_path):
    student = models.width_student(TINY, 1 / 8)                      # block 0: 2 channels, 1 sinusoid frequency
    assert student.time_proj.num_channels == 16 and student.config.block_out_channels[0] == 2
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 900])
    assert torch.isfinite(student(x, t).sample).all()
    student.save_pretrained(tmp_path / "s")
    assert torch.equal(models.load_unet(str(tmp_path / "s"))(x, t).sample, student(x, t).sample)


def test_teacher_directory_loads_and_bad_sources_say_what_to_do(tmp_path, monkeypatch):
    UNet2DModel(**TINY).save_pretrained(tmp_path / "teacher")
    assert tuple(models.load_unet(str(tmp_path / "teacher")).config.block_out_channels) == (16, 32, 32)
    with pytest.raises(models.LoadError, match="no config.json"):
        models.load_unet(str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.LoadError, match="HF_HUB_OFFLINE is set"):
        models.load_unet("someone/not-a-cached-model")


def test_feature_hooks_match_adapted_widths():
    torch.manual_seed(0)
    teacher = UNet2DModel(**TINY).eval()
    student = models.width_student(TINY, 0.5)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    hooks = models.FeatureHooks(models.unet_feature_layers(teacher))
    with torch.no_grad():
        teacher(x, t)
    feats_t = hooks.pop()
    model = models.Distillee(student, models.unet_feature_layers(student), feats_t, ((x[:1], t[:1]), {}))
    eps, feats_s = model(x, t)
    assert eps.shape == x.shape and [f.shape for f in feats_s] == [f.shape for f in feats_t]
    assert hooks.pop() == [None] * len(feats_t)                      # popped features are cleared
    loss = models.feature_kd_loss(feats_s, feats_t)
    loss.backward()
    assert all(a.weight.grad is not None for a in model.adapters if hasattr(a, "weight"))


def test_every_module_imports_and_every_import_is_pinned():
    import ast
    import importlib
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    local = {f[:-3] for f in os.listdir(repo) if f.endswith(".py")}
    pinned = {line.split("==")[0].strip().lower().replace("-", "_")
              for line in open(os.path.join(repo, "requirements.txt"))
              if "==" in line and not line.startswith("#")}
    aliases = {"PIL": "pillow", "cleanfid": "clean_fid", "torch_pruning": "torch_pruning", "safetensors": "safetensors",
               "huggingface_hub": "huggingface_hub"}
    for name in sorted(local):
        importlib.import_module(name)
        tree = ast.parse(open(os.path.join(repo, name + ".py")).read())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for top in {n.split(".")[0] for n in names}:
                if top in local or top in sys.stdlib_module_names:
                    continue
                assert aliases.get(top, top).lower() in pinned, \
                    f"{name}.py imports {top}, not pinned in requirements.txt"


def test_compiled_student_matches_eager():
    """--compile: Distillee.compile() in place gives the eager outputs and gradients (to 1e-5, the gradient relative
    to its norm) and keeps the state dict's keys, so checkpoints and EMA are unchanged."""
    import copy
    from models import Distillee, load_unet
    eager = Distillee(load_unet(os.path.join(REPO, "assets", "tiny_unet_pruned70")))
    compiled = copy.deepcopy(eager)
    compiled.compile()
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 1000, (4,), generator=g)
    outs = []
    for model in (eager, compiled):
        out = model(x, t)[0]
        out.square().sum().backward()
        outs.append((out.detach(), [p.grad for p in model.parameters()]))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    eager_grad, compiled_grad = (torch.cat([g.flatten() for g in grads]) for _, grads in outs)
    assert (eager_grad - compiled_grad).norm() <= 1e-5 * eager_grad.norm()   # (key biases' are 0 up to float noise)
    assert list(compiled.state_dict()) == list(eager.state_dict())


def test_micro_batches_accumulate_the_whole_batch_gradient():
    """Backpropagating each of n parts' mean loss / n gives the gradient of the whole batch's mean loss."""
    torch.manual_seed(0)
    net, x, y = torch.nn.Linear(5, 3), torch.randn(12, 5), torch.randn(12, 3)
    torch.nn.functional.mse_loss(net(x), y).backward()
    whole = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    for xi, yi in common.micro_batches(net, 4, x, y):
        assert len(xi) == 3
        (torch.nn.functional.mse_loss(net(xi), yi) / 4).backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(whole, net.parameters()))
