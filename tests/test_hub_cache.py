"""The default hub ids, loaded offline from a Hugging Face cache (issue 12): flat repos (google/ddpm-cifar10-32,
stabilityai/sd-vae-ft-ema: config.json and weights at the root) and pipelines (facebook/DiT-XL-2-256, SD3-medium:
the model under transformer/ or vae/), each cached with its real file layout and tiny random weights."""
import hashlib
import json
import os

import huggingface_hub
import pytest
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DiTPipeline, DiTTransformer2DModel,
                       SD3Transformer2DModel, UNet2DModel)
from safetensors.torch import load_file

import models
from helpers import rows, run_script
from test_dit_script import random_dit
from test_sd3_script import tiny_sd3_pipeline
from test_tools import TINY

DDPM, SD_VAE, DIT = "google/ddpm-cifar10-32", "stabilityai/sd-vae-ft-ema", "facebook/DiT-XL-2-256"
SD3 = "stabilityai/stable-diffusion-3-medium-diffusers"


def build_hub_cache(hf_home, repos):
    """Cache each {repo id: save(folder)} under HF_HOME/hub as hf_hub_download leaves it: every file a blob named by
    its sha256, symlinked from snapshots/<revision>/, and refs/main naming that revision. Returns hf_home."""
    for repo_id, save in repos.items():
        repo = os.path.join(hf_home, "hub", "models--" + repo_id.replace("/", "--"))
        revision = hashlib.sha1(repo_id.encode()).hexdigest()          # any 40-hex commit id
        snapshot = os.path.join(repo, "snapshots", revision)
        save(snapshot)
        os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
        for folder, _, names in os.walk(snapshot):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    blob = os.path.join(repo, "blobs", hashlib.sha256(f.read()).hexdigest())
                os.replace(path, blob)
                os.symlink(os.path.relpath(blob, folder), path)
        os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
        with open(os.path.join(repo, "refs", "main"), "w") as f:
            f.write(revision)
    return str(hf_home)


def tiny_vae():
    """An AutoencoderKL halving the image size into 12 channels: 32x32 images -> the smoke DiT's 12x16x16 latents."""
    return AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         block_out_channels=[8, 8], latent_channels=12, norm_num_groups=4, sample_size=32,
                         scaling_factor=0.18215).eval()


def save_ddpm_repo(unet):
    """google/ddpm-cifar10-32's layout: the UNet at the root, beside its scheduler and a DDPMPipeline index."""
    def save(folder):
        unet.save_pretrained(folder)
        DDPMScheduler().save_pretrained(folder)
        with open(os.path.join(folder, "model_index.json"), "w") as f:
            json.dump({"_class_name": "DDPMPipeline", "scheduler": ["diffusers", "DDPMScheduler"],
                       "unet": ["diffusers", "UNet2DModel"]}, f)
    return save


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """(HF_HOME of a cache holding the four default hub ids, {repo id or (repo id, part): the state dict saved})."""
    torch.manual_seed(0)
    unet, sd_vae, dit_vae, dit = UNet2DModel(**TINY), tiny_vae(), tiny_vae(), random_dit()
    saved = {DDPM: unet.state_dict(), SD_VAE: sd_vae.state_dict(), DIT: dit.state_dict(),
             (DIT, "vae"): dit_vae.state_dict()}

    def save_sd3(folder):
        tiny_sd3_pipeline(folder)
        saved[SD3] = load_file(os.path.join(folder, "transformer", "diffusion_pytorch_model.safetensors"))
    home = build_hub_cache(tmp_path_factory.mktemp("hf_home"), {
        DDPM: save_ddpm_repo(unet), SD_VAE: sd_vae.save_pretrained,
        DIT: DiTPipeline(transformer=dit, vae=dit_vae, scheduler=DDIMScheduler()).save_pretrained, SD3: save_sd3})
    return home, saved


@pytest.fixture
def offline(hub, monkeypatch):
    """This process reads only that cache, as with HF_HOME and HF_HUB_OFFLINE=1 set before Python starts
    (huggingface_hub reads both into its constants at import). Returns the saved state dicts."""
    home, saved = hub
    monkeypatch.setenv("HF_HOME", home)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", os.path.join(home, "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return saved


def same_weights(model, state):
    """Whether model's weights are exactly the state dict."""
    mine = model.state_dict()
    return mine.keys() == state.keys() and all(torch.equal(mine[k], state[k]) for k in state)


def test_flat_repos_load_from_their_root(offline):
    assert same_weights(models.load_unet(DDPM), offline[DDPM])
    assert same_weights(models.load_vae(SD_VAE), offline[SD_VAE])
    config = models.load_pretrained(UNet2DModel, DDPM, subfolder="unet", config_only=True)
    assert tuple(config["block_out_channels"]) == (16, 32, 32)


def test_pipelines_load_from_their_subfolders(offline):
    """As depth_teacher_student loads a transformer teacher and load_vae a pipeline's VAE."""
    dit = models.load_pretrained(DiTTransformer2DModel, DIT, subfolder="transformer")
    assert same_weights(dit, offline[DIT]) and same_weights(models.load_vae(DIT), offline[DIT, "vae"])
    sd3 = models.load_pretrained(SD3Transformer2DModel, SD3, subfolder="transformer")
    assert same_weights(sd3, offline[SD3]) and models.load_vae(SD3).config.shift_factor == 0.0609


@pytest.mark.parametrize("load", [lambda: models.load_unet("google/ddpm-cifar10-64"),
                                  lambda: models.load_pretrained(DiTTransformer2DModel, "facebook/DiT-XL-2-512",
                                                                 subfolder="transformer")])
def test_uncached_hub_id_is_a_one_line_error(offline, load):
    with pytest.raises(models.LoadError) as e:
        load()
    assert "HF_HUB_OFFLINE is set and it is not in the local cache" in str(e.value) and "\n" not in str(e.value)


def test_dit_script_runs_the_paper_hub_ids_offline(hub, tmp_path):
    """The paper preset's teacher and VAE ids, as a user runs them: HF_HOME and HF_HUB_OFFLINE=1, smoke sizes."""
    home, _ = hub
    out = str(tmp_path / "run")
    p = run_script("train_dit_latent.py", "--teacher", DIT, "--vae", SD_VAE, "--kd", "lift", "--fid-samples", "0",
                   "--out", out, env={"HF_HOME": home, "HF_HUB_CACHE": os.path.join(home, "hub")})
    assert p.returncode == 0, p.stderr[-2000:]
    assert [int(r["step"]) for r in rows(out)] == [1, 2, 3, 4] and float(rows(out)[-1]["kd"]) > 0
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["teacher_params"] == models.dit_params(random_dit())      # the cached teacher, not assets/tiny_dit


def test_unet_script_runs_the_paper_hub_id_offline(hub, tmp_path):
    """google/ddpm-cifar10-32, a flat repo, as the paper preset names it, pruned 90 % as the paper prunes."""
    home, _ = hub
    out = str(tmp_path / "run")
    p = run_script("train_unet_cifar.py", "--teacher", DDPM, "--prune-ratio", "0.9", "--kd", "outkd",
                   "--fid-samples", "0", "--out", out, env={"HF_HOME": home, "HF_HUB_CACHE": os.path.join(home, "hub")})
    assert p.returncode == 0, p.stderr[-2000:]
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["teacher_params"] == models.count_params(UNet2DModel(**TINY))      # the cached teacher
    assert metrics["args"]["teacher"] == DDPM and float(rows(out)[-1]["kd"]) > 0
