"""Sampling and metrics shared by the scripts: DDIM sampling, FID through clean-fid, and the offline shape metrics.

Offline there is no Inception network, so the embedded shapes dataset is scored in the feature space of a small
classifier trained on it (weights shipped in assets/). Its Frechet distance is called "shape-FD", never FID.
Train the classifier (a few minutes on 2 CPU cores):

    python metrics.py --out assets/shape_classifier.safetensors
"""
import argparse
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from data import make_shapes, to_model_range

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSIFIER = os.path.join(HERE, "assets", "shape_classifier.safetensors")
REFERENCE_SEED = 10_000            # the shape-FD reference images come from a seed no training run uses


# ---------------------------------------------------------------- sampling
@torch.no_grad()
def ddim_sample(unet, scheduler_config, n, steps=100, eta=0.0, seed=0, batch_size=256, device="cpu", first=0):
    """Images first .. first + n - 1 (uint8, (n, 3, H, W)) of a sampling run seeded `seed`, by diffusers' DDIM
    pipeline with "leading" timestep spacing. Image j draws its noise from its own generator, seeded by the j-th
    draw of a generator seeded `seed`, so it is the same in any batch and any share of the run."""
    from diffusers import DDIMPipeline, DDIMScheduler
    pipe = DDIMPipeline(unet=unet, scheduler=DDIMScheduler.from_config(scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator(device="cpu").manual_seed(seed)
    seeds = [int(torch.randint(0, 2**62, (1,), generator=g)) for _ in range(first + n)][first:]
    out = []
    was_training = unet.training
    unet.eval()
    for i in range(0, n, batch_size):
        noise_gen = [torch.Generator().manual_seed(s) for s in seeds[i:i + batch_size]]       # one per image
        images = pipe(batch_size=len(noise_gen), generator=noise_gen, eta=eta, num_inference_steps=steps,
                      output_type="np").images                                  # (b, H, W, 3) in [0, 1]
        out.append(torch.from_numpy(np.round(images * 255)).to(torch.uint8).permute(0, 3, 1, 2))
    unet.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def sample_generators(seed, first, n):
    """One CPU generator per sample: sample j of a sampling run seeded `seed` draws all its noise from seed * 1_000_003
    + j (runs with other seeds share no noise below a million samples), whichever batch it is drawn in."""
    return [torch.Generator().manual_seed(seed * 1_000_003 + j) for j in range(first, first + n)]


@torch.no_grad()
def guided_sample(predict, scheduler, generators, shape, steps, guidance, guided_channels=None, device="cpu"):
    """Latents (shape) from noise by a diffusers scheduler with classifier-free guidance; one generator per sample
    (shape[0] of them, see sample_generators) for its initial noise and every stochastic step, so a sample is the
    same in any batch.

    predict(x, t) gets the batch twice, (conditional; unconditional), and returns both predictions stacked the same
    way. Guidance, out = uncond + guidance * (cond - uncond) (Ho & Salimans 2022), applies to the first
    `guided_channels` channels (DiT: the eps half; the learned-variance half is taken from the conditional pass, as
    DiT samples); the scheduler then takes one step. guidance 1 is no guidance (one pass is still made each way).
    """
    x = torch.cat([torch.randn(1, *shape[1:], generator=g) for g in generators]).to(device)
    x = x * getattr(scheduler, "init_noise_sigma", 1.0)
    scheduler.set_timesteps(steps, device=device)
    for t in scheduler.timesteps:
        xin = torch.cat([x, x])
        xin = scheduler.scale_model_input(xin, t) if hasattr(scheduler, "scale_model_input") else xin  # flow: none
        cond, uncond = predict(xin, t).float().chunk(2)
        c = guided_channels or cond.shape[1]
        guided = torch.cat([uncond[:, :c] + guidance * (cond[:, :c] - uncond[:, :c]), cond[:, c:]], dim=1)
        x = scheduler.step(guided, t, x, generator=generators).prev_sample
    return x


def to_uint8(images):
    """Model-range images in [-1, 1] -> uint8 [0, 255] on the CPU."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


# ---------------------------------------------------------------- samples on disk, shared by torchrun ranks
def weights_digest(model):
    """SHA-256 of a model's weights (names, dtypes, values): which model a folder of samples came from."""
    h = hashlib.sha256()
    for name, v in model.state_dict().items():
        h.update(f"{name} {v.dtype} {tuple(v.shape)}".encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def sample_paths(folder, n):
    """The files of samples 0 .. n - 1 in a samples folder: folder/000000.png, ..."""
    return [os.path.join(folder, f"{j:06d}.png") for j in range(n)]


def write_samples(generate, n, folder, key, rank=0, world=1, batch_size=256, desc="FID samples"):
    """Make samples 0 .. n - 1 as PNG files in `folder`, every torchrun rank its own contiguous share.

    generate(first, b) -> uint8 (b, 3, H, W) must give sample j the same image whichever call makes it (one
    generator per sample), so the folder is the same for any number of processes (but for float rounding). `key`
    (sampler settings and the model's weights_digest) is kept in folder/settings.json: a folder made with another key
    is emptied first, one with the same key keeps its files (an interrupted evaluation goes on where it stopped).
    Past one barrier at the start the ranks never meet in a collective (hours of sampling cannot hit NCCL's
    timeout): rank 0 returns the n paths once every file is there, the other ranks when their share is written.
    """
    key = json.loads(json.dumps(key))               # what settings.json reads back
    settings = os.path.join(folder, "settings.json")
    if rank == 0:
        known = None
        if os.path.isfile(settings):
            with open(settings) as f:
                known = json.load(f)
        if known != key:
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            with open(settings + ".tmp", "w") as f:
                json.dump(key, f, indent=1)
            os.replace(settings + ".tmp", settings)
    if world > 1:
        torch.distributed.barrier()
    paths = sample_paths(folder, n)
    lo, hi = n * rank // world, n * (rank + 1) // world
    for first in tqdm(range(lo, hi, batch_size), disable=rank != 0, desc=desc):
        todo = paths[first:min(first + batch_size, hi)]
        if all(os.path.exists(p) for p in todo):
            continue
        for path, image in zip(todo, generate(first, len(todo)).cpu()):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(path + ".tmp", format="PNG")
            os.replace(path + ".tmp", path)          # a kill never leaves a half-written sample
    while rank == 0 and not set(paths) <= {os.path.join(folder, f) for f in os.listdir(folder)}:
        time.sleep(1)                                # the other ranks' shares
    return paths


def read_samples(paths):
    """uint8 (N, 3, H, W) of PNG files."""
    return torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths])


# ---------------------------------------------------------------- the offline shape metrics
class ShapeClassifier(nn.Module):
    """A small CNN for the 10 shape kinds; its 128-d penultimate features define shape-FD."""

    def __init__(self, classes=10):
        super().__init__()
        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU())
        self.body = nn.Sequential(block(3, 32), nn.AvgPool2d(2), block(32, 64), nn.AvgPool2d(2), block(64, 128),
                                  block(128, 128))
        self.head = nn.Linear(128, classes)

    def features(self, x):
        """(B, 128) features of model-range images."""
        return self.body(x).mean((2, 3))

    def forward(self, x):
        return self.head(self.features(x))


@functools.lru_cache(maxsize=4)
def load_classifier(path=CLASSIFIER, device="cpu"):
    """The shipped shape classifier, frozen (loaded once per path and device)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no shape classifier at {path}: train it with `python metrics.py --out {path}`")
    model = ShapeClassifier()
    model.load_state_dict(load_file(path))
    return model.to(device).eval().requires_grad_(False)


@torch.no_grad()
def classify(classifier, images, batch_size=500):
    """(features (N, 128) float64 numpy, predicted labels (N,)) of uint8 images."""
    device = next(classifier.parameters()).device
    feats, preds = [], []
    for i in range(0, len(images), batch_size):
        f = classifier.features(to_model_range(images[i:i + batch_size]).to(device))
        feats.append(f.double().cpu())
        preds.append(classifier.head(f).argmax(1).cpu())
    return torch.cat(feats).numpy(), torch.cat(preds)


def frechet(feats_a, feats_b):
    """Frechet distance between Gaussians fitted to two feature sets, by clean-fid's implementation."""
    from cleanfid.fid import frechet_distance
    return float(frechet_distance(feats_a.mean(0), np.cov(feats_a, rowvar=False),
                                  feats_b.mean(0), np.cov(feats_b, rowvar=False)))


_REFERENCE = {}                    # (classifier, n, size) -> features of the held-out images, computed once


def shape_metrics(images, classifier, labels=None, n_reference=10_000):
    """shape-FD of uint8 images against held-out embedded images, and (given labels) the class accuracy."""
    key = (classifier, n_reference, images.shape[-1])
    if key not in _REFERENCE:
        _REFERENCE.clear()
        _REFERENCE[key] = classify(classifier, make_shapes(n_reference, REFERENCE_SEED, images.shape[-1])[0])[0]
    ref_feats = _REFERENCE[key]
    feats, preds = classify(classifier, images)
    out = {"shape_fd": frechet(feats, ref_feats), "shape_fd_reference_images": n_reference}
    if labels is not None:
        out["class_accuracy"] = float((preds == labels.cpu()).float().mean())
    return out


def cached_reference(teacher_dir, teacher, settings, compute):
    """The teacher's offline metrics: read from TEACHER_DIR/reference_metrics.json when they were measured with
    exactly these settings on these weights (its "weights" field is the teacher's weights_digest; the shipped tiny
    teachers' are), else compute() now: a retrained teacher in the same folder is measured afresh."""
    cache = os.path.join(teacher_dir, "reference_metrics.json")
    if os.path.isfile(cache):
        with open(cache) as f:
            known = json.load(f)
        if all(known.get(k) == v for k, v in dict(settings, weights=weights_digest(teacher)).items()):
            return known
    return compute()


# ---------------------------------------------------------------- FID (clean-fid)
def place_inception(mode, inception):
    """Copy local Inception weights to where clean-fid looks, so FID works offline.

    clean / legacy_tensorflow: <system temp dir>/inception-2015-12-05.pt (clean-fid fixes this folder).
    legacy_pytorch: torch hub's checkpoint folder ($TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth).
    """
    if inception is None:
        return
    if mode == "legacy_pytorch":
        target = os.path.join(torch.hub.get_dir(), "checkpoints", "pt_inception-2015-12-05-6726825d.pth")
    else:
        target = os.path.join(tempfile.gettempdir(), "inception-2015-12-05.pt")
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(inception, target)


class FIDUnavailable(RuntimeError):
    """clean-fid's Inception weights or reference statistics cannot be had (offline); the run still writes its
    metrics, with fid null and this message as the reason."""


def fid_extractor(mode, inception=None, device="cpu"):
    """clean-fid's Inception feature extractor for `mode` (local weights placed first when given)."""
    from cleanfid.features import build_feature_extractor
    place_inception(mode, inception)
    try:
        return build_feature_extractor(mode, torch.device(device), use_dataparallel=False)
    except Exception as e:                           # a download that failed: urllib, requests or torch.hub errors
        raise FIDUnavailable(f"clean-fid cannot fetch its Inception weights ({type(e).__name__}; offline?): "
                             "pass --fid-inception FILE") from None


def inception_features(generate, n, extractor, mode, batch_size=250, device="cpu", desc="FID samples"):
    """(n, 2048) Inception features of generate(b) -> uint8 (b, 3, H, W), resized as clean-fid's `mode` resizes."""
    from cleanfid.fid import get_model_features
    return get_model_features(lambda z: generate(len(z)), extractor, mode=mode, num_gen=n, batch_size=batch_size,
                              device=torch.device(device), desc=desc)


def fid(paths, mode="legacy_pytorch", stats=None, dataset="cifar10", res=32, split="train", inception=None,
        batch_size=250, device="cpu", extractor=None):
    """FID of the image files `paths` (see write_samples) against reference statistics, by clean-fid.

    stats: an .npz with mu and sigma; without it clean-fid's own statistics of (dataset, res, split, mode) are used
    (read from its package's stats/ folder, downloaded there if missing). The files are read and resized by
    clean-fid's folder path. Raises FIDUnavailable when the weights or statistics cannot be had.
    """
    from cleanfid.features import get_reference_statistics
    from cleanfid.fid import frechet_distance, get_files_features
    if stats is not None:
        ref = np.load(stats)
        mu_ref, sigma_ref = ref["mu"], ref["sigma"]
    else:
        try:
            mu_ref, sigma_ref = get_reference_statistics(dataset, res, mode=mode, split=split)
        except Exception as e:
            raise FIDUnavailable(f"clean-fid cannot fetch its {dataset} {split} statistics ({type(e).__name__}; "
                                 "offline?): pass --fid-stats FILE") from None
    extractor = extractor or fid_extractor(mode, inception, device)
    feats = get_files_features(list(paths), extractor, num_workers=0, batch_size=batch_size,
                               device=torch.device(device), mode=mode, description="FID features")
    return float(frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), mu_ref, sigma_ref))


def reference_stats(images, path, about, mode="legacy_pytorch", inception=None, batch_size=250, device="cpu",
                    extractor=None):
    """FID reference statistics (mu, sigma) of uint8 images (B, 3, H, W), the training images as trained on, written
    to the .npz `path` (atomically) with `about` (what they are) and `mode`; an existing file with the same
    `about` and mode is reused. Returns path."""
    if os.path.isfile(path):
        with np.load(path) as known:
            if str(known.get("about", "")) == about and str(known.get("mode", "")) == mode:
                return path
    extractor = extractor or fid_extractor(mode, inception, device)
    taken = [0]

    def real(b):                                     # consecutive images; clean-fid asks for whole batches
        idx = torch.arange(taken[0], taken[0] + b) % len(images)
        taken[0] += b
        return images[idx]
    feats = inception_features(real, len(images), extractor, mode, batch_size, device, desc="FID reference")
    tmp = path + ".tmp.npz"
    np.savez(tmp, mu=feats.mean(0), sigma=np.cov(feats, rowvar=False), about=about, mode=mode, n=len(images))
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- CLIP score (text-to-image)
def load_clip(source, device="cpu"):
    """(CLIPModel, CLIPProcessor), frozen, from a hub id (e.g. openai/clip-vit-large-patch14) or a local directory;
    a one-line ValueError when it cannot be had."""
    from transformers import CLIPModel, CLIPProcessor
    try:
        return (CLIPModel.from_pretrained(source).to(device).eval().requires_grad_(False),
                CLIPProcessor.from_pretrained(source))
    except Exception as e:
        raise ValueError(f"cannot load a CLIP model from {source} ({type(e).__name__}): pass a local directory holding "
                         f"a transformers CLIPModel and its processor, or leave --clip-model out") from None


@torch.no_grad()
def clip_scores(images, captions, clip, batch_size=64):
    """Per-image CLIP score, 100 * max(0, cos(image embedding, caption embedding)), as torchmetrics' CLIPScore computes
    it (Hessel et al. 2021 without their 2.5 weight). images: uint8 (B, 3, H, W), resized and normalised by the CLIP
    processor; captions truncated to CLIP's 77 tokens. Returns a float64 tensor of len(images)."""
    model, processor = clip
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        inputs = processor(text=list(captions[i:i + batch_size]), images=list(images[i:i + batch_size].cpu()),
                           return_tensors="pt", padding=True, truncation=True).to(device)
        o = model(**inputs)                          # image_embeds, text_embeds: projected and L2-normalised
        out.append(100 * (o.image_embeds.double() * o.text_embeds.double()).sum(-1).clamp(min=0).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------- training the shape classifier
def main(args):
    """Train the shape classifier on the embedded dataset and save it as safetensors."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    images, labels, _ = make_shapes(args.n, args.seed)
    test_images, test_labels, _ = make_shapes(2000, REFERENCE_SEED + 1)
    model = ShapeClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = args.epochs * (args.n // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    bar = tqdm(range(steps), desc="shape classifier")
    for step in bar:
        idx = torch.randint(0, args.n, (args.batch_size,))
        x = to_model_range(images[idx])
        x = x + 0.1 * torch.randn_like(x) * torch.rand(len(x), 1, 1, 1)         # robust to sampler noise
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    _, preds = classify(model, test_images)
    print(f"held-out accuracy {(preds == test_labels).float().mean().item():.4f} on 2000 images")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train the shape classifier that defines shape-FD.")
    parser.add_argument("--out", default=CLASSIFIER)
    parser.add_argument("--n", type=int, default=20000, help="embedded training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    main(parser.parse_args())
