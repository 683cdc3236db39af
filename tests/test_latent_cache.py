"""The latent scripts at paper scale: caches built by several ranks equal the one built by one process and resume
after an interruption; both flips are cached and drawn; VAE calls and sampling in micro-batches equal one call."""
import argparse
import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from common import batch_latents
from data import DataError, cache_latents, to_model_range
from models import PixelUnshuffleLatents, decode_latents, encode_latents, load_vae
from train_sd3 import StandInTextEncoder, encode_captions
from helpers import assert_one_line_error, rows, run_script
from test_hub_cache import tiny_vae


def image_files(folder, n=7, size=32):
    """n random-pixel PNG images (size x size) in folder/cls/; their paths, in the order list_image_folder gives."""
    os.makedirs(os.path.join(folder, "cls"), exist_ok=True)
    g = np.random.default_rng(0)
    files = [os.path.join(folder, "cls", f"{i}.png") for i in range(n)]
    for f in files:
        Image.fromarray(g.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(f)
    return files


def vae_encoder(vae_dir, batch_size=3):
    """cache_latents' encode: uint8 images and one generator per image -> latents, batch_size images per VAE call."""
    vae = load_vae(vae_dir)
    return lambda u, g: encode_latents(vae, to_model_range(u), g, batch_size)


def build_both(files, vae_dir, out, rank=0, world=1):
    """The latent cache (in parts of 2 images) and the caption cache (300 captions: parts of 256 and 45) of one rank."""
    latents = cache_latents(files, 32, vae_encoder(vae_dir), out + "_latents.npy", rank, world, chunk=2)
    text = encode_captions(StandInTextEncoder(16, 8), [f"a red circle {i}" for i in range(300)], out, rank=rank,
                           world=world)
    return latents, text


def rank_main(rank, files, vae_dir, out, port):
    """One of two CPU processes (gloo), as torchrun starts them, building the caches together."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    build_both(files, vae_dir, out, rank, 2)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    """A tiny random AutoencoderKL (32x32 images -> 12x16x16 latents), saved."""
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("vae"))
    tiny_vae().save_pretrained(path)
    return path


def interrupted_build(files, vae_dir, path, parts_done):
    """A latent cache build killed after `parts_done` parts (of 2 images), with a half-written part beside them."""
    encode, calls = vae_encoder(vae_dir), []

    def dying(u, g):
        if len(calls) == parts_done:
            raise KeyboardInterrupt
        calls.append(1)
        return encode(u, g)
    with pytest.raises(KeyboardInterrupt):
        cache_latents(files, 32, dying, path, chunk=2)
    with open(os.path.join(path + ".parts", "rows_000000006_000000007.npz.tmp.npz"), "wb") as f:
        f.write(b"half a part")


@pytest.mark.parametrize("start", ["empty", "half-written"])
def test_two_ranks_build_the_cache_one_process_builds(start, vae_dir, tmp_path):
    files = image_files(str(tmp_path / "data"))
    one_latents, one_text = build_both(files, vae_dir, str(tmp_path / "one"))
    two = str(tmp_path / "two")
    if start == "half-written":                            # one process began, two finish: 2 of the 4 parts there
        interrupted_build(files, vae_dir, two + "_latents.npy", parts_done=2)
        assert sorted(os.listdir(two + "_latents.npy.parts"))[:2] == ["rows_000000000_000000002.npz",
                                                                      "rows_000000002_000000004.npz"]
    mp.spawn(rank_main, args=(files, vae_dir, two, 29531 if start == "empty" else 29532), nprocs=2)
    two_latents, two_text = build_both(files, vae_dir, two)   # reads the files the two ranks left
    assert one_latents.shape == (7, 2, 12, 16, 16) and one_latents.dtype == np.float16
    assert np.array_equal(one_latents, two_latents)
    assert one_text[0].shape == (301, 8, 16) and all(np.array_equal(a, b) for a, b in zip(one_text, two_text))
    assert not os.path.exists(two + "_latents.npy.parts") and not os.path.exists(two + "_tokens.npy.parts")
    assert not any(name.endswith(".tmp.npy") for name in os.listdir(tmp_path))


def test_interrupted_cache_resumes_from_its_parts(vae_dir, tmp_path):
    files = image_files(str(tmp_path / "data"))
    straight = cache_latents(files, 32, vae_encoder(vae_dir), str(tmp_path / "straight.npy"), chunk=2)
    path = str(tmp_path / "resumed.npy")
    interrupted_build(files, vae_dir, path, parts_done=3)
    assert not os.path.exists(path) and len(os.listdir(path + ".parts")) == 4    # 3 parts and the half-written one
    encode, calls = vae_encoder(vae_dir), []
    resumed = cache_latents(files, 32, lambda u, g: calls.append(len(u)) or encode(u, g), path, chunk=2)
    assert calls == [2] and np.array_equal(straight, resumed)        # only the last image, with its mirror
    assert not os.path.exists(path + ".parts")


def test_cache_holds_each_image_and_its_mirror_encoded_with_their_own_noise(vae_dir, tmp_path):
    files = image_files(str(tmp_path / "data"), n=3)
    cache = cache_latents(files, 32, vae_encoder(vae_dir), str(tmp_path / "c.npy"), chunk=2)
    vae = load_vae(vae_dir)
    u = torch.from_numpy(np.stack([np.asarray(Image.open(f)) for f in files])).permute(0, 3, 1, 2)
    for r in range(3):                                  # row r, side s: noise seeded 2 r + s, as cache_latents seeds it
        for s, image in enumerate([u[r], u[r].flip(-1)]):
            z = encode_latents(vae, to_model_range(image[None]), [torch.Generator().manual_seed(2 * r + s)])
            assert torch.allclose(torch.from_numpy(cache[r, s].astype(np.float32)), z[0], atol=1e-2, rtol=1e-3)
    assert not np.allclose(cache[:, 0], cache[:, 1], atol=0.1)      # a flipped latent is not the mirror's latent
    assert not np.allclose(cache[:, 0], cache[:, 0, :, :, ::-1], atol=0.1)


def test_old_cache_without_mirrors_is_a_one_line_error(tmp_path):
    files = image_files(str(tmp_path / "data"), n=8)
    old = str(tmp_path / "old.npy")
    np.save(old, np.zeros((8, 12, 16, 16), dtype=np.float16))
    with pytest.raises(DataError, match="without the mirrored images' latents"):
        cache_latents(files, 32, None, old)
    p = run_script("train_dit_latent.py", "--data-dir", str(tmp_path / "data"), "--latent-cache", old,
                   "--batch-size", "4", "--fid-samples", "0", "--out", str(tmp_path / "run"))
    assert_one_line_error(p, "without the mirrored images' latents (an older format): delete it")


def test_script_under_torchrun_builds_the_cache_one_process_builds(vae_dir, tmp_path):
    """Two CPU processes of train_dit_latent.py with a real (tiny) VAE: the cache they share equals cache_latents'
    in one process, and training runs on it with flips."""
    files = image_files(str(tmp_path / "data"), n=8)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    out = str(tmp_path / "run")
    p = run_script("train_dit_latent.py", "--vae", vae_dir, "--data-dir", str(tmp_path / "data"), "--flip", "1",
                   "--batch-size", "4", "--steps", "2", "--device", "cpu", "--threads", "1", "--fid-samples", "0",
                   "--out", out, launcher=launcher)
    assert p.returncode == 0, p.stderr[-2000:]
    one = cache_latents(files, 32, vae_encoder(vae_dir, 256), str(tmp_path / "one.npy"))   # the smoke preset's 256
    assert np.array_equal(np.load(os.path.join(out, "latents.npy")), one)
    assert [int(r["step"]) for r in rows(out)] == [1, 2]


# ---------------------------------------------------------------- micro-batches
def test_presets_flip_and_sample_batch_size():
    """Flip on in the paper presets (DiT's recipe), off in the tiny ones; VAE and sampler batches sized to 80 GB."""
    import train_dit_latent
    import train_sd3
    for script, paper_batch in ((train_dit_latent, 64), (train_sd3, 8)):
        paper, tiny = script.parse_args(["--preset", "paper"]), script.parse_args(["--preset", "tiny"])
        assert (paper.flip, paper.sample_batch_size, tiny.flip, tiny.sample_batch_size) == (1, paper_batch, 0, 256)
        assert script.parse_args(["--preset", "paper", "--flip", "0", "--sample-batch-size", "2"]).flip == 0


def test_vae_in_micro_batches_equals_one_call(vae_dir):
    vae = load_vae(vae_dir)
    x = torch.rand(7, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(7)]
    whole, parts = encode_latents(vae, x, gens()), encode_latents(vae, x, gens(), batch_size=3)
    assert whole.shape == (7, 12, 16, 16) and torch.allclose(parts, whole, atol=1e-6, rtol=0)
    assert torch.allclose(encode_latents(vae, x[4:5], gens()[4:5]), whole[4:5], atol=1e-6, rtol=0)  # its own noise
    assert not torch.allclose(encode_latents(vae, x, torch.Generator().manual_seed(100)), whole, atol=1e-2)
    z = torch.randn(7, 12, 16, 16, generator=torch.Generator().manual_seed(2))
    decoded = torch.cat([decode_latents(vae, z[i:i + 3]) for i in range(0, 7, 3)])   # as sample() decodes
    assert torch.allclose(decoded, decode_latents(vae, z), atol=1e-6, rtol=0)


def same_images(a, b):
    """Equal uint8 images up to float rounding: a batch's matrix products sum in another order than a smaller batch's,
    which moves a rare pixel by one level (noise drawn per batch would change every pixel)."""
    d = (a.int() - b.int()).abs()
    return a.shape == b.shape and int(d.max()) <= 1 and float((d > 0).float().mean()) < 1e-3


def dit_setting(vae_dir):
    """A random DiT (learned variance) sampled by DDPM, whose steps draw noise, and a tiny AutoencoderKL."""
    from test_dit_script import random_dit
    from train_dit_latent import parse_args
    args = parse_args(["--preset", "smoke", "--sampler", "ddpm", "--sample-steps", "3"])
    return args, random_dit(), load_vae(vae_dir)


def test_dit_samples_do_not_depend_on_the_sample_batch_size(vae_dir):
    from train_dit_latent import sample
    args, model, vae = dit_setting(vae_dir)
    labels = torch.arange(7) % 10
    by = {}
    for b in (3, 7, 256):
        args.sample_batch_size = b
        by[b] = sample(args, model, vae, labels, 5, torch.device("cpu"))
    assert by[3].shape == (7, 3, 32, 32) and same_images(by[3], by[7]) and same_images(by[3], by[256])
    tail = sample(args, model, vae, labels[4:], 5, torch.device("cpu"), first=4)     # as FID's batches ask for them
    assert same_images(tail, by[3][4:])
    assert not same_images(sample(args, model, vae, labels, 6, torch.device("cpu")), by[3])
    assert len({bytes(image.numpy()) for image in by[3]}) == 7


def test_sd3_samples_do_not_depend_on_the_sample_batch_size():
    from test_sd3_script import random_sd3
    from train_sd3 import parse_args, sample
    args = parse_args(["--preset", "smoke", "--sample-steps", "3"])
    model, encode = random_sd3(), StandInTextEncoder(16, 8)
    tokens, pooled = encode([f"a red circle {i}" for i in range(7)])
    by = {}
    for b in (3, 256):
        args.sample_batch_size = b
        by[b] = sample(args, model, PixelUnshuffleLatents(), tokens, pooled, encode([""]), 5, torch.device("cpu"))
    assert by[3].shape == (7, 3, 32, 32) and same_images(by[3], by[256])
    tail = sample(args, model, PixelUnshuffleLatents(), tokens[4:], pooled[4:], encode([""]), 5, torch.device("cpu"),
                  first=4)
    assert same_images(tail, by[3][4:]) and len({bytes(image.numpy()) for image in by[3]}) == 7


# ---------------------------------------------------------------- flips drawn in training
def drawn_sides(flip, cached, images, draws=40):
    """Which side (0: the image, 1: its mirror) each row of `draws` batches used, (draws, N); every latent drawn is
    exactly one of the two."""
    vae = PixelUnshuffleLatents()
    if cached is not None:
        plain, mirror = torch.from_numpy(cached[:, 0]).float(), torch.from_numpy(cached[:, 1]).float()
    else:
        plain, mirror = (encode_latents(vae, to_model_range(images)),
                         encode_latents(vae, to_model_range(images).flip(-1)))
    args = argparse.Namespace(flip=flip, sample_batch_size=4)                  # embedded images: 4 per VAE call
    idx = torch.randperm(len(plain), generator=torch.Generator().manual_seed(0))
    sides = []
    for _ in range(draws):
        x0 = batch_latents(args, idx, cached, images, vae, "cpu")
        is_plain, is_mirror = [(x0 == z[idx]).flatten(1).all(1) for z in (plain, mirror)]
        assert bool((is_plain ^ is_mirror).all())
        sides.append(is_mirror.long())
    return torch.stack(sides)


@pytest.mark.parametrize("source", ["cache", "embedded images"])
def test_flip_draws_the_image_or_its_mirror_and_no_flip_never_the_mirror(source):
    torch.manual_seed(0)
    cached, images = None, None
    if source == "cache":
        cached = np.random.default_rng(0).standard_normal((6, 2, 12, 16, 16)).astype(np.float16)
    else:
        images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    flipped = drawn_sides(1, cached, images)
    assert 0.35 < flipped.float().mean() < 0.65
    assert bool((flipped.min(0).values == 0).all()) and bool((flipped.max(0).values == 1).all())  # each row both ways
    assert drawn_sides(0, cached, images).sum() == 0
