"""Datasets for every script: the embedded shapes dataset (offline presets), CIFAR-10's python tarball, image folders.

Every dataset is held in memory as uint8 images (N, 3, H, W) with integer labels (and captions for the shapes),
and batches come from `batch_indices(step)`: a pure function of (seed, step), so a resumed run sees exactly the
data a straight run would, with no loader state to save. Latent caches are encoded once, shared out over the ranks,
and resume after an interruption.
"""
import json
import os
import pickle
import shutil
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SHAPES = ["circle", "square", "triangle", "diamond", "ring", "plus", "cross", "star", "crescent", "frame"]
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220), "yellow": (235, 210, 40),
           "purple": (150, 50, 190), "orange": (245, 140, 30), "white": (240, 240, 240), "black": (20, 20, 20)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class DataError(ValueError):
    """Data that is missing or unreadable; the scripts print its one-line message and exit."""


def _shape_mask(kind, x, y, r):
    """Mask of shape `kind` at coordinates x, y (B, S, S) relative to its centre, radius r (B, 1, 1)."""
    d = torch.sqrt(x ** 2 + y ** 2)
    box = torch.maximum(x.abs(), y.abs())
    name = SHAPES[kind]
    if name == "circle":
        return d < r
    if name == "square":
        return box < 0.8 * r
    if name == "triangle":                                                      # apex up
        return (y < 0.5 * r) & (y > -r + 2 * x.abs())
    if name == "diamond":
        return x.abs() + y.abs() < r
    if name == "ring":
        return (d < r) & (d > 0.55 * r)
    if name == "plus":
        return ((x.abs() < 0.3 * r) & (y.abs() < r)) | ((y.abs() < 0.3 * r) & (x.abs() < r))
    if name == "cross":
        return (((x - y).abs() < 0.4 * r) | ((x + y).abs() < 0.4 * r)) & (d < r)
    if name == "star":                                                          # five points
        return d < r * (0.55 + 0.45 * torch.cos(5 * torch.atan2(y, x)))
    if name == "crescent":
        return (d < r) & ((x - 0.45 * r) ** 2 + (y + 0.2 * r) ** 2 > (0.75 * r) ** 2)
    return (box < 0.85 * r) & (box > 0.5 * r)                                  # frame


def make_shapes(n, seed=0, size=32, start=0):
    """The embedded dataset: n images (uint8, (n, 3, size, size)), labels (shape kind) and captions.

    Image i is a function of (seed, start + i) alone: one coloured shape of 10 kinds, random size and position,
    on a two-colour gradient background. Drawn at 2x and average-pooled, so edges are anti-aliased.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + start)
    kind = torch.randint(0, 10, (n,), generator=g)
    colour = torch.randint(0, len(COLOURS), (n,), generator=g)
    r = (0.18 + 0.17 * torch.rand(n, generator=g)) * size                      # radius 18-35 % of the image
    cx, cy = [(0.5 + (torch.rand(n, generator=g) - 0.5) * (1 - 2 * r / size)) * size for _ in range(2)]
    bg = torch.rand(n, 2, 3, generator=g) * 0.8 + 0.1                          # two background colours in [0.1, 0.9]
    S = 2 * size
    coords = (torch.arange(S) + 0.5) / 2                                        # pixel centres at 2x
    x = (coords.view(1, 1, S) - cx.view(-1, 1, 1)).expand(n, S, S)
    y = (coords.view(1, S, 1) - cy.view(-1, 1, 1)).expand(n, S, S)
    mask = torch.zeros(n, 1, S, S)
    for k in range(len(SHAPES)):                                                # (n, 1, S, S)
        sel = kind == k
        mask[sel, 0] = _shape_mask(k, x[sel], y[sel], r[sel].view(-1, 1, 1)).float()
    mask = F.avg_pool2d(mask, 2)                                                # anti-aliased, (n, 1, size, size)
    ramp = torch.linspace(0, 1, size).view(1, 1, 1, size)                      # horizontal gradient
    background = bg[:, 0, :, None, None] * (1 - ramp) + bg[:, 1, :, None, None] * ramp
    rgb = torch.tensor(list(COLOURS.values()), dtype=torch.float32)[colour] / 255
    img = background * (1 - mask) + rgb[:, :, None, None] * mask
    names = list(COLOURS)
    captions = [f"{'an' if names[c][0] in 'aeiou' else 'a'} {names[c]} {SHAPES[k]}"
                for k, c in zip(kind.tolist(), colour.tolist())]
    return (img * 255).round().to(torch.uint8), kind, captions


def read_cifar10(path):
    """CIFAR-10's python version: cifar-10-python.tar.gz or its extracted folder -> uint8 (50000, 3, 32, 32), labels."""
    names = [f"data_batch_{i}" for i in range(1, 6)]
    batches = []
    if os.path.isfile(path) and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            members = {os.path.basename(m.name): m for m in tar.getmembers()}
            for name in names:
                if name not in members:
                    raise DataError(f"{path} is not the CIFAR-10 python tarball: no {name} inside")
                batches.append(pickle.load(tar.extractfile(members[name]), encoding="bytes"))
    else:
        folder = (os.path.join(path, "cifar-10-batches-py") if os.path.isdir(os.path.join(path, "cifar-10-batches-py"))
                  else path)
        for name in names:
            file = os.path.join(folder, name)
            if not os.path.isfile(file):
                raise DataError(f"no CIFAR-10 batch {file}: pass cifar-10-python.tar.gz or its extracted folder")
            with open(file, "rb") as f:
                batches.append(pickle.load(f, encoding="bytes"))
    try:
        images = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([b[b"labels"] for b in batches])
    except (KeyError, ValueError) as e:
        raise DataError(f"{path}: not in CIFAR-10's python format ({e})") from None
    return torch.from_numpy(images), torch.from_numpy(labels).long()


# DDIM's CelebA-64 crop (ermongroup/ddim, datasets/__init__.py): the 128 x 128 box whose top-left corner is row 57,
# column 25 of the 178 x 218 aligned images, then a bilinear resize to 64. As (left, top, width, height).
CELEBA_CROP = (25, 57, 128, 128)


def _load_image(path, size, crop=None):
    """One image file -> uint8 (3, size, size): the box `crop` (left, top, width, height) resized bilinearly, or
    without a box the shorter side resized to size and centre-cropped."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if crop is not None:
            left, top, width, height = crop
            if im.width < left + width or im.height < top + height:
                raise DataError(f"{path} is {im.width}x{im.height}, smaller than the crop box {crop} (left, top, w, h)")
            im = im.crop((left, top, left + width, top + height)).resize((size, size), Image.BILINEAR)
        else:
            scale = size / min(im.size)
            im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))), Image.BICUBIC)
            left, top = (im.width - size) // 2, (im.height - size) // 2
            im = im.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


def list_image_folder(path):
    """(files, labels, class names) of every image under `path`; sub-folders are the classes, sorted."""
    if not os.path.isdir(path):
        raise DataError(f"--data-dir {path} is not a folder of images")
    files = []
    for root, _, names in sorted(os.walk(path)):
        files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES)]
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {path}")
    classes = sorted({os.path.relpath(os.path.dirname(f), path) for f in files})
    labels = torch.tensor([classes.index(os.path.relpath(os.path.dirname(f), path)) for f in files])
    return files, labels, classes


def load_image_files(files, size, crop=None):
    """uint8 (N, 3, size, size) of the given image files (8 reader threads), each cropped as _load_image does."""
    try:
        with ThreadPoolExecutor(8) as pool:
            return torch.stack(list(pool.map(lambda f: _load_image(f, size, crop), files)))
    except (OSError, ValueError) as e:
        raise DataError(f"unreadable image: {e}") from None


def read_image_folder(path, size, crop=None):
    """Every image under `path` (sub-folders are classes, sorted) -> uint8 (N, 3, size, size), labels, class names."""
    files, labels, classes = list_image_folder(path)
    return load_image_files(files, size, crop), labels, classes


def list_captioned_folder(path):
    """(files, captions) of a folder of images with captions: a .txt beside each image, or a metadata.jsonl whose
    lines are {"file_name": ..., "text": ...} (the Hugging Face imagefolder convention)."""
    files = list_image_folder(path)[0]
    meta = os.path.join(path, "metadata.jsonl")
    known = {}
    if os.path.isfile(meta):
        with open(meta) as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    known[os.path.normpath(os.path.join(path, entry["file_name"]))] = entry["text"]
    captions = []
    for file in files:
        txt = os.path.splitext(file)[0] + ".txt"
        if os.path.isfile(txt):
            with open(txt) as f:
                captions.append(f.read().strip())
        elif os.path.normpath(file) in known:
            captions.append(known[os.path.normpath(file)])
        else:
            raise DataError(f"no caption for {file}: put a .txt beside it or a line in {meta}")
    return files, captions


# Rows per part of a cache being built: a few seconds of GPU work each, so an interrupted build loses little.
CACHE_CHUNK = 256


def build_cache(paths, n, encode, rank=0, world=1, chunk=CACHE_CHUNK, desc="encoding"):
    """Float16 .npy files `paths` of n rows each, filled once by encode(start, stop) -> one array per path (rows
    start..stop-1), returned memory-mapped; files already there are reused as they are.

    The rows are cut into parts of `chunk` rows. Each rank encodes its share of the parts not yet written and writes
    each part atomically to the folder PATHS[0].parts (so an interrupted build resumes from the parts written); rank
    0 then joins them into `paths` (temp names, then renamed) and deletes them. Past one barrier at the start, the
    ranks wait for each other's files on disk, never in a collective: encoding ImageNet takes hours, far past
    NCCL's 10-minute timeout, and ranks drift apart by more than that over hours.
    """
    from tqdm import tqdm
    folder = paths[0] + ".parts"
    parts = [os.path.join(folder, f"rows_{a:09d}_{min(a + chunk, n):09d}.npz") for a in range(0, n, chunk)]
    building = not all(os.path.exists(p) for p in paths)
    todo = [k for k, part in enumerate(parts) if building and not os.path.exists(part)]
    if world > 1:
        torch.distributed.barrier()          # every rank has looked before any rank writes: they share out one todo
    if building:
        os.makedirs(folder, exist_ok=True)
        names = {os.path.basename(p) for p in parts}
        written = lambda: len(names & set(os.listdir(folder)))
        bar = tqdm(total=len(parts), initial=len(parts) - len(todo), desc=desc, disable=rank != 0)
        for k in todo[rank::world]:
            arrays = encode(k * chunk, min(k * chunk + chunk, n))
            np.savez(parts[k] + ".tmp.npz", *[np.asarray(a, dtype=np.float16) for a in arrays])
            os.replace(parts[k] + ".tmp.npz", parts[k])
            if rank == 0:
                bar.update(written() - bar.n)
        if rank == 0:
            while written() < len(parts):                                     # the other ranks' shares
                time.sleep(1)
                bar.update(written() - bar.n)
            bar.close()
            with np.load(parts[0]) as first:
                outs = [np.lib.format.open_memmap(p + ".tmp.npy", mode="w+", dtype=np.float16,
                                                  shape=(n, *first[f"arr_{j}"].shape[1:])) for j, p in enumerate(paths)]
            for k, part in enumerate(parts):
                with np.load(part) as arrays:
                    for j, out in enumerate(outs):
                        out[k * chunk:k * chunk + chunk] = arrays[f"arr_{j}"]
            for out, p in zip(outs, paths):
                out.flush()
                os.replace(p + ".tmp.npy", p)
            del outs
            shutil.rmtree(folder)
        while not all(os.path.exists(p) for p in paths):                       # rank 0 is joining the parts
            time.sleep(1)
    return [np.load(p, mmap_mode="r") for p in paths]


def cache_latents(files, size, encode, path, rank=0, world=1, chunk=CACHE_CHUNK):
    """Latents (N, 2, C, h, w) of every image file (side 0) and of its mirror image (side 1, for --flip), in the
    float16 .npy `path`, memory-mapped; built once by build_cache (shared by the ranks, resumable).

    encode(uint8 images, generators) -> latents, with one generator per image for the VAE's noise, seeded by
    (row, side): a latent does not depend on which rank encodes it or on the batch it is encoded in.
    """
    def encode_rows(a, b):
        u = load_image_files(files[a:b], size)
        both = torch.stack([u, u.flip(-1)], 1).flatten(0, 1)                 # (2 (b - a), 3, H, W): image, mirror, ...
        z = encode(both, [torch.Generator().manual_seed(s) for s in range(2 * a, 2 * b)])
        return [z.view(b - a, 2, *z.shape[1:]).float().cpu().numpy()]
    latents = build_cache([path], len(files), encode_rows, rank, world, chunk, desc="encoding latents")[0]
    if latents.ndim != 5 or latents.shape[1] != 2:
        raise DataError(f"latent cache {path} has shape {latents.shape}, without the mirrored images' latents "
                        "(an older format): delete it, and it is encoded again")
    if len(latents) != len(files):
        raise DataError(f"latent cache {path} holds {len(latents)} latents for {len(files)} images: delete it")
    return latents


def is_cifar10(data_dir):
    """Whether data_dir is CIFAR-10's python tarball or its extracted folder (else: an image folder)."""
    return (os.path.isfile(data_dir) or os.path.isdir(os.path.join(data_dir, "cifar-10-batches-py"))
            or os.path.isfile(os.path.join(data_dir, "data_batch_1")))


def load_images(data_dir, size, n_embedded, seed=0, crop=None):
    """The training images: CIFAR-10 or an image folder (cropped by `crop`, see _load_image) when data_dir is given,
    else the embedded shapes."""
    if data_dir is None:
        images, labels, _ = make_shapes(n_embedded, seed, size)
        return images, labels
    if not os.path.exists(data_dir):
        raise DataError(f"--data-dir {data_dir} does not exist")
    if is_cifar10(data_dir):
        images, labels = read_cifar10(data_dir)
        if images.shape[-1] != size:
            images = F.interpolate(images.float(), size=size, mode="bilinear",
                                   antialias=True).round().clamp(0, 255).byte()
        return images, labels
    images, labels, _ = read_image_folder(data_dir, size, crop)
    return images, labels


def batch_indices(n, batch_size, step, seed, rank=0, world=1):
    """Indices of this rank's part of the global batch at `step`: epochs are seeded permutations of range(n)."""
    epoch_len = n // batch_size                                                # full batches per epoch
    if epoch_len == 0:
        raise DataError(f"batch size {batch_size} is larger than the dataset ({n} images)")
    epoch, i = divmod(step, epoch_len)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
    batch = perm[i * batch_size:(i + 1) * batch_size]
    return batch[rank::world]


def to_model_range(images):
    """uint8 [0, 255] -> float [-1, 1], the range diffusion models are trained in."""
    return images.float() / 127.5 - 1
