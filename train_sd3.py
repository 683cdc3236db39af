"""Distil Stable Diffusion 3's MMDiT into one with fewer joint blocks, with LIFT + PLACE on the predicted velocity.

The paper's flow-matching setting (Han, Yeo, Yoo, "LIFT and PLACE", CVPR 2026): teacher SD3-medium's transformer
(24 joint blocks, about 2 B parameters), rectified flow as SD3 trains it; students keep fewer joint blocks,
initialised from them. The text encoders (CLIP-L, CLIP-G, T5-XXL) only fill a cache of prompt embeddings once;
training never holds them.

    # offline, CPU, about 7 minutes: tiny shipped MMDiT teacher, embedded captions, stand-in text encoder and latents
    python train_sd3.py --preset tiny --out runs/sd3_tiny
    # the paper setting on GPUs: a folder of images with captions (.txt beside each image, or metadata.jsonl)
    torchrun --nproc_per_node 8 train_sd3.py --preset paper --student-depth 12 --data-dir captioned/ \
        --fid-stats ref_stats.npz --out runs/sd3_d12
    # sample a grid from a saved student (captions of the embedded dataset)
    python train_sd3.py --sample-from runs/sd3_tiny/student --vae pixel-unshuffle --out runs/sd3_grid
    # re-train the shipped tiny teacher from its config (random init, all 6 blocks, no KD; about 2.5 h on 1 CPU core)
    python train_sd3.py --preset tiny --kd none --init random --student-depth 6 --steps 36000 --lr 1e-3 \
        --out runs/sd3_teacher

Teacher: SD3Transformer2DModel (stabilityai/stable-diffusion-3-medium-diffusers or a directory, a transformer alone
too), its AutoencoderKL (16 channels; latents are (z - 0.0609) * 1.5305, the config's shift and scale) and its three
text encoders. Students: fewer joint blocks (--student-depth, --keep-blocks), initialised from them. SD3's last block
does not update the caption tokens (context-pre-only); the student's last block takes that form, its caption-side
modulation starting from the kept block's pre-attention scale and shift, so its image output equals that block's
exactly (tested). Sizes from the config on the meta device: teacher 2,028 M; 18 blocks 1,518 M, 12 blocks 1,009 M,
8 blocks 669 M, 6 blocks 499 M.

Objective (Esser et al. 2024, SD3): x_t = (1 - sigma) x_0 + sigma * noise, the network predicts the velocity
noise - x_0 (MSE, uniform weighting), sigma drawn logit-normal (mean 0, std 1; diffusers'
compute_density_for_timestep_sampling) and shifted by the schedule's shift (3.0 for SD3-medium) through the
scheduler's own table. The KD methods compare student and teacher velocities. A caption is replaced by the empty
caption 10 % of the time (for guidance); the teacher gets the same captions.

Loss scale: the paper preset uses per-element means (--loss-scale mean), as the authors' SD code does for every term
(BK_SDM_EXP's kd_t2i.py: the diffusion MSE, OutKD, LIFT + PLACE with the |b0| + |b1 - 1| coarse term, lambda 1,
clip 1; their repo has no SD3 code). A per-sample sum would be 262,144 times larger at 1024^2 and the clip at 1 would
fire on every step.

A captioned --data-dir (images with a .txt beside each, or a metadata.jsonl of {"file_name", "text"}) becomes two
float16 .npy caches, built once by all torchrun ranks and resumable: the VAE latents of every image and of its mirror
image (for --flip, on in the paper preset as in diffusers' SD3 script), and the three text encoders' prompt
embeddings (the encoders run under no_grad and are then freed). Offline: the embedded captions through a stand-in
text encoder (every word a fixed random vector seeded by its CRC32, at the config's joint_attention_dim and
pooled_projection_dim; the empty caption is zeros) and the pixel-unshuffle stand-in latents.

Sampling: FlowMatchEuler with guidance (paper preset: 28 steps, guidance 7.0, the pipeline's defaults), bf16 on a GPU.
--sample-batch-size bounds every VAE and sampling call (paper: 8 at 1024^2, sized for an 80 GB GPU); each sample has
its own seeded noise, so the size changes memory, not samples. FID through clean-fid against --fid-stats; offline,
shape-FD and caption -> class accuracy. With --clip-model (a transformers CLIPModel and its processor, a hub id such
as openai/clip-vit-large-patch14 or a directory) also the CLIP score of the same samples against their captions: the
mean of 100 * max(0, cos(image, caption embedding)), as torchmetrics' CLIPScore computes it (Hessel et al. 2021,
without their 2.5 weight). The CLIP model is loaded at start (a bad path fails before training) and kept on the CPU
until the evaluation. Ctrl-C checkpoints and exits 130; offline, metrics.json gets fid null and the reason. GPU
memory per student depth and batch (about 32 GiB per GPU for the paper preset): benchmarks/README.md.

The hub path is tested offline: a test builds a whole SD3 pipeline of tiny random parts (the MMDiT, a 16-channel
AutoencoderKL with SD3's shift and scale, two CLIP text encoders with projection, a T5 encoder, their tokenizers),
saves it with save_pretrained, and runs this script with --teacher, --vae and --text-encoder all pointing at it and
--clip-model at a saved tiny CLIP; the caption cache equals what the pipeline's encode_prompt gives, and training
goes past its first backward (the cached embeddings carry no autograd graph).

Tiny teacher (assets/tiny_sd3): 6 joint blocks, width 64, 0.89 M parameters (3.6 MB), trained on CPU by the command
above. With 28 Euler steps, guidance 2.0, 1000 samples: shape-FD 2.43 and caption -> class accuracy 0.72
(assets/tiny_sd3/reference_metrics.json). Its samples take the caption's colour; per class the accuracy is
0.82-1.00 for circles, squares, rings, stars, crescents and frames, and 0.29-0.63 for diamonds, plus and cross
signs and triangles. The tiny preset's student is joint blocks 0 and 3 (288,432 parameters, 32.6 %); its
measured run is in results/README.md.
"""
import argparse
import os
import zlib

import numpy as np
import torch

from common import (FEATURE_KD, add_depth_args, add_training_args, autocast, backward, batch_latents,
                    check_depth_args, clip_gradients, depth_models, diffusion_loss, ema_update, end_step, fail,
                    fid_or_null, folder_latents, kd_loss, micro_batches, finish_run,
                    resume_or_start, save_grid, set_lr, setup_device, start_loop, start_run, student_and_ema,
                    teacher_prediction)
from data import batch_indices, build_cache, list_captioned_folder, make_shapes, to_model_range
from metrics import (cached_reference, clip_scores, fid, guided_sample, load_classifier, load_clip, read_samples,
                     sample_generators, shape_metrics, to_uint8, weights_digest, write_samples)
from models import LoadError, decode_latents, latent_image_size, load_pretrained, load_vae, matched_blocks
from place import check_group_size

HERE = os.path.dirname(os.path.abspath(__file__))
SD3 = "stabilityai/stable-diffusion-3-medium-diffusers"
PRESETS = {
    # SD3 fine-tuning as diffusers' SD3 training script: AdamW lr 1e-4 (no warm-up), random horizontal flip (its
    # --random_flip); sampler as the SD3 pipeline's defaults: 28 flow-matching Euler steps, guidance 7.0. FID on 30k
    # samples as text-to-image papers report. sample_batch_size 8 to fit an 80 GB GPU at SD3-medium's 1024^2 (an
    # estimate, not measured): the VAE decoder's widest activation (256 channels at full size, fp32) is 1 GB an image
    # and decoding holds a few at once, so 8 images take about 25 GB beside the ~28 GB of teacher, 12-block student,
    # EMA and AdamW state (64 would need hundreds of GB); sampling the MMDiT in bf16 (2 x 8 sequences of 4096 + 333
    # tokens) takes a few GB. Losses as the authors' SD code (BK_SDM_EXP/src/kd_t2i.py; their repo has no SD3 code):
    # every term a per-element mean (loss-scale mean; a per-sample sum would be 262,144x larger at 1024^2 and the
    # clip at 1 would fire on every step), LIFT's coarse term |b0| + |b1 - 1|, lambda 1, clip 1.
    "paper": dict(teacher=SD3, vae=SD3, text_encoder=SD3, student_depth=12, steps=100_000, batch_size=64, lr=1e-4,
                  ema=0.9999, log_every=100, sample_every=5000, ckpt_every=5000, sample_steps=28, guidance=7.0,
                  fid_samples=30_000, n_embedded=50_000, eval_teacher=0, flip=1, sample_batch_size=8,
                  loss_scale="mean"),
    # no flip in the tiny presets: the tiny teacher never saw mirrored shapes
    "tiny": dict(teacher=os.path.join(HERE, "assets", "tiny_sd3"), vae="pixel-unshuffle", text_encoder="stand-in",
                 student_depth=2, steps=1500, batch_size=64, lr=1e-3, ema=0.999, log_every=25, sample_every=500,
                 ckpt_every=500, sample_steps=28, guidance=2.0, fid_samples=1000, n_embedded=20_000, eval_teacher=1,
                 flip=0, sample_batch_size=256),
    "smoke": dict(teacher=os.path.join(HERE, "assets", "tiny_sd3"), vae="pixel-unshuffle", text_encoder="stand-in",
                  student_depth=2, steps=4, batch_size=8, lr=1e-3, ema=0.999, log_every=1, sample_every=2, ckpt_every=2,
                  sample_steps=4, guidance=2.0, fid_samples=16, n_embedded=256, eval_teacher=0, flip=0,
                  sample_batch_size=256),
}


class StandInTextEncoder:
    """The offline stand-in for SD3's three text encoders, named as such: every word maps to fixed random vectors
    (seeded by its CRC32) of the sizes the transformer's config asks for. Tokens (B, max_tokens, joint_attention_dim)
    are the words in order, zero-padded; the pooled vector (B, pooled_projection_dim) is the mean over words. The
    empty caption is all zeros. Nothing is learned; the transformer's conditioning path is the real one."""

    def __init__(self, joint_dim, pooled_dim, max_tokens=8):
        self.joint_dim, self.pooled_dim, self.max_tokens = joint_dim, pooled_dim, max_tokens

    def word(self, w):
        g = torch.Generator().manual_seed(zlib.crc32(w.encode()))
        return torch.randn(self.joint_dim + self.pooled_dim, generator=g)

    def __call__(self, captions):
        tokens, pooled = (torch.zeros(len(captions), self.max_tokens, self.joint_dim),
                          torch.zeros(len(captions), self.pooled_dim))
        for i, caption in enumerate(captions):
            words = caption.lower().split()[:self.max_tokens]
            if words:
                vectors = torch.stack([self.word(w) for w in words])
                tokens[i, :len(words)] = vectors[:, :self.joint_dim]
                pooled[i] = vectors[:, self.joint_dim:].mean(0)
        return tokens, pooled


def text_encoder(args, config, device):
    """captions -> (prompt tokens, pooled): the stand-in, or SD3's three encoders through its pipeline."""
    if args.text_encoder == "stand-in":
        return StandInTextEncoder(config.joint_attention_dim, config.pooled_projection_dim)
    from diffusers import StableDiffusion3Pipeline
    try:
        pipe = StableDiffusion3Pipeline.from_pretrained(args.text_encoder, transformer=None, vae=None).to(device)
    except Exception as e:
        raise LoadError(f"cannot load SD3's text encoders from {args.text_encoder} ({type(e).__name__}): pass a local "
                        f"pipeline directory, or --text-encoder stand-in (offline)") from None

    @torch.no_grad()                                 # frozen encoders: no graph is kept with the cached embeddings
    def encode(captions):
        tokens, _, pooled, _ = pipe.encode_prompt(captions, None, None, device=device,
                                                  do_classifier_free_guidance=False)
        return tokens, pooled
    return encode


def encode_captions(encode, captions, cache=None, batch_size=64, rank=0, world=1):
    """(tokens, pooled) for every caption and, last, the empty caption (the guidance null): in memory, or written once
    to memory-mapped float16 files CACHE_tokens.npy, CACHE_pooled.npy by data.build_cache (the ranks share the work)."""
    captions = list(captions) + [""]

    def rows(a, b):                                  # captions a..b-1, batch_size per call of the text encoders
        tokens, pooled = zip(*(encode(captions[i:min(i + batch_size, b)]) for i in range(a, b, batch_size)))
        return torch.cat(tokens).float(), torch.cat(pooled).float()
    if cache is None:
        return rows(0, len(captions))
    return tuple(build_cache([f"{cache}_tokens.npy", f"{cache}_pooled.npy"], len(captions),
                             lambda a, b: [v.cpu().numpy() for v in rows(a, b)], rank, world, desc="encoding captions"))


def rows_of(table, idx, device):
    """Rows idx of an in-memory tensor or a memory-mapped array, as float32 on device."""
    if isinstance(table, torch.Tensor):
        return table[idx].to(device)
    return torch.from_numpy(np.asarray(table[idx.numpy()])).float().to(device)


def prompts(text, idx, device, drop=None):
    """(tokens, pooled) of the captions idx in encode_captions' tables, as float32 on device; where drop is true,
    those of the empty caption instead."""
    if drop is not None:
        idx = torch.where(drop, torch.full_like(idx, len(text[1]) - 1), idx)
    return tuple(rows_of(table, idx, device) for table in text)


def empty_caption(text):
    """(tokens, pooled) of the empty caption on the CPU: the guidance null, which encode_captions keeps last."""
    return prompts(text, torch.tensor([len(text[1]) - 1]), "cpu")


@torch.no_grad()
def sample(args, model, vae, tokens, pooled, null, seed, device, first=0):
    """uint8 images for the given prompt embeddings: guided flow-matching Euler sampling (bf16 autocast on GPU), then
    the decoder, --sample-batch-size at a time. Sample j draws its noise from its own generator (seed, first + j), so
    the images do not depend on the batch size."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    cfg = model.config
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(tokens), args.sample_batch_size):
        tok, pool = tokens[i:i + args.sample_batch_size].to(device), pooled[i:i + args.sample_batch_size].to(device)
        enc = torch.cat([tok, null[0].to(device).expand_as(tok)])               # (conditional; unconditional)
        pooled2 = torch.cat([pool, null[1].to(device).expand_as(pool)])

        def predict(x, t):
            with autocast:
                return model(x, encoder_hidden_states=enc, pooled_projections=pooled2, timestep=t.expand(len(x))).sample
        z = guided_sample(predict, FlowMatchEulerDiscreteScheduler(shift=args.shift),
                           sample_generators(seed, first + i, len(tok)),
                           (len(tok), cfg.in_channels, cfg.sample_size, cfg.sample_size), args.sample_steps,
                           args.guidance, device=device)
        out.append(to_uint8(decode_latents(vae, z)))                             # one VAE call per batch
    model.train(was_training)
    return torch.cat(out)


def sampler_settings(args, n):
    """How the evaluation samples are drawn, written beside every number (and the key of a cached teacher value)."""
    return dict(sampler="FlowMatchEuler", sample_steps=args.sample_steps, guidance=args.guidance, shift=args.shift,
                n_samples=n, sample_seed=args.seed, noise="one generator per sample")


def evaluate(args, model, vae, encode, null, device, n, clip=None, rank=0, world=1, name="student"):
    """Metrics of n guided samples, made by every rank into OUT/fid_samples/NAME/ (PNG files, the same for any number
    of processes): FID (clean-fid, --fid-stats) for real data; offline shape-FD and caption -> class accuracy. Given
    a CLIP model (--clip-model), also the mean CLIP score of the samples against their captions. Rank 0 returns
    them, the other ranks None."""
    real = args.data_dir is not None or args.fid_stats
    if real:                                         # the dataset's captions in order, cycled
        known = list_captioned_folder(args.data_dir)[1] if args.data_dir else [""]
        captions, labels = [known[j % len(known)] for j in range(n)], None
    else:
        _, labels, captions = make_shapes(n, seed=args.seed + 1)                   # captions of unseen images
    settings = dict(sampler_settings(args, n), captions="the data's, in order" if real else "embedded, seed + 1")

    def generate(first, b):                          # sample j: caption j, its own noise generator
        tok, pool = encode(captions[first:first + b])
        return sample(args, model, vae, tok.float(), pool.float(), null, args.seed, device, first)
    paths = write_samples(generate, n, os.path.join(args.out, "fid_samples", name),
                          dict(settings, weights=weights_digest(model)), rank, world, args.sample_batch_size)
    if rank != 0:
        return None
    if real:
        metrics = dict(settings, fid_reference=args.fid_stats, **fid_or_null(
            lambda: fid(paths, mode=args.fid_mode, stats=args.fid_stats, inception=args.fid_inception,
                        batch_size=args.sample_batch_size, device=str(device)), args.fid_mode))
    else:
        metrics = dict(settings, **shape_metrics(read_samples(paths), load_classifier(device=device), labels))
    if clip:
        metrics.update(clip_score=clip_scores(read_samples(paths), captions, clip).mean().item(),
                       clip_model=args.clip_model)
    return metrics


def teacher_metrics(args, teacher, vae, encode, null, device, rank, world):
    """The teacher's metrics under the student's protocol (--eval-teacher 1): its FID on real data; offline its
    shape-FD and class accuracy, read from TEACHER/reference_metrics.json when measured with these settings."""
    if args.data_dir is not None or args.fid_stats:
        m = evaluate(args, teacher, vae, encode, null, device, args.fid_samples, None, rank, world, "teacher")
        return m and dict(teacher_fid=m["fid"])
    m = cached_reference(args.teacher, teacher, sampler_settings(args, args.fid_samples),
                         lambda: evaluate(args, teacher, vae, encode, null, device, args.fid_samples, None, rank,
                                          world, "teacher"))
    return m and dict(teacher_shape_fd=m["shape_fd"], teacher_class_accuracy=m["class_accuracy"])


def sample_only(args):
    """--sample-from DIR: a grid of guided samples from a saved MMDiT, for captions of the embedded dataset."""
    from diffusers import SD3Transformer2DModel
    _, _, device = setup_device(args.device)
    model = load_pretrained(SD3Transformer2DModel, args.sample_from, subfolder="transformer").to(device)
    vae = load_vae(args.vae).to(device)
    encode = text_encoder(args, model.config, device)
    _, _, captions = make_shapes(64, seed=args.seed)
    tok, pool = encode(captions)
    images = sample(args, model, vae, tok.float(), pool.float(), encode([""]), args.seed, device)
    os.makedirs(args.out, exist_ok=True)
    save_grid(to_model_range(images), os.path.join(args.out, "samples.png"), nrow=8)
    with open(os.path.join(args.out, "captions.txt"), "w") as f:
        f.write("\n".join(captions) + "\n")
    print(f"wrote {len(images)} samples to {os.path.join(args.out, 'samples.png')} (captions in captions.txt)")


def training_data(args, vae, image_size, config, rank, world, device):
    """(latents or None, images or None, prompt embeddings (tokens, pooled; the empty caption last), n): a captioned
    folder's VAE latents and prompt embeddings, each cached once (every rank a share; resumable), or the embedded
    shapes (encoded per batch) with their captions' embeddings in memory. The text encoders are freed on return."""
    encode = text_encoder(args, config, device)
    if args.data_dir is not None:
        files, captions = list_captioned_folder(args.data_dir)
        cache = args.cache or os.path.join(args.out, "cache")
        latents = folder_latents(args, files, vae, image_size, cache + "_latents.npy", rank, world, device)
        return latents, None, encode_captions(encode, captions, cache, rank=rank, world=world), len(files)
    images, _, captions = make_shapes(args.n_embedded, args.seed, image_size)
    return None, images, encode_captions(encode, captions), len(images)


def main(args):
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from diffusers.training_utils import compute_density_for_timestep_sampling
    # ---- devices, seeds, run dir
    rank, world, device = start_run(args)

    clip = (load_clip(args.clip_model) if args.clip_model and args.fid_samples and rank == 0  # fails early; CPU
            else None)

    # ---- teacher (frozen), student, EMA
    teacher, student, sizes = depth_models(SD3Transformer2DModel, args, device, rank)
    if device.type == "cuda":
        student.enable_gradient_checkpointing()     # activations recomputed per block: memory for batch size
    cfg = student.config                             # the teacher's but for the number of blocks
    C, S = cfg.in_channels, cfg.sample_size
    vae = load_vae(args.vae).to(device)
    image_size = latent_image_size(vae, C, S, device)
    if args.kd == "place":
        check_group_size(S * S, args.group_size)
    example = ((torch.zeros(1, C, S, S, device=device),),                # one caption token: only widths matter
               dict(encoder_hidden_states=torch.zeros(1, 1, cfg.joint_attention_dim, device=device),
                    pooled_projections=torch.zeros(1, cfg.pooled_projection_dim, device=device),
                    timestep=torch.zeros(1, device=device)))
    layers = matched_blocks(student, teacher, sizes["kept_blocks"]) if args.kd in FEATURE_KD else None
    model, ema, teacher_hooks = student_and_ema(args, student, teacher, example, layers)

    # ---- data: latents and prompt embeddings, cached (a captioned folder) or in memory (the embedded shapes)
    latents, images, text, n_data = training_data(args, vae, image_size, cfg, rank, world, device)

    # ---- optimizer, resume
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0)
    start, train_model = resume_or_start(args, model, ema, optimizer, rank, world, device)
    flow = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=args.shift)
    student_autocast = autocast(device)

    # ---- training loop
    grid_text, null = prompts(text, torch.arange(min(64, n_data)), "cpu"), empty_caption(text)   # fixed grid captions
    loop = start_loop(args, start, rank, world, device, model, ema, optimizer,
                      grid=lambda: sample(args, ema.student, vae, *grid_text, null, 0, device))
    for step in loop.bar:
        idx = batch_indices(n_data, args.batch_size, step, args.seed, rank, world)
        x0 = batch_latents(args, idx, latents, images, vae, device)              # (B, C, S, S), flipped or not
        drop = torch.rand(len(idx)) < args.caption_dropout                      # -> the empty caption
        enc, pooled = prompts(text, idx, device, drop)                           # the same captions for both networks
        noise = torch.randn_like(x0)
        u = compute_density_for_timestep_sampling("logit_normal", len(x0), logit_mean=0.0, logit_std=1.0)
        i = (u * flow.config.num_train_timesteps).long()
        t, sigma = flow.timesteps[i].to(device), flow.sigmas[i].to(device).view(-1, 1, 1, 1)   # shifted table
        xt = (1 - sigma) * x0 + sigma * noise                                    # rectified flow, SD3 Eq. 3
        target = noise - x0                                                      # the velocity
        optimizer.zero_grad(set_to_none=True)
        for xt, t, enc, pooled, target in micro_batches(train_model, args.grad_accum, xt, t, enc, pooled, target):
            with student_autocast:
                v_s, feats_s = train_model(xt, encoder_hidden_states=enc, pooled_projections=pooled, timestep=t)
                v_t, feats_t = teacher_prediction(args, teacher, teacher_hooks, xt, encoder_hidden_states=enc,
                                                  pooled_projections=pooled, timestep=t)
            diffusion = diffusion_loss(v_s, target, args.loss_scale)               # flow-matching MSE
            kd, fit = kd_loss(args, v_s, v_t, feats_s, feats_t)
            loss = diffusion + args.kd_weight * kd
            backward(loss, args, step)
        grad_norm = clip_gradients(model, args)
        set_lr(optimizer, args, step)
        optimizer.step()
        ema_update(ema, model, args.ema, step)
        end_step(loop, step, grad_norm, loss, diffusion, kd, fit, v_s, v_t)      # log, grid, checkpoint

    # ---- final save and evaluation
    def evaluations():                               # the student's metrics, then (--eval-teacher 1) the teacher's
        encode = text_encoder(args, cfg, device)
        null = tuple(v.float() for v in encode([""]))
        on_device = (clip[0].to(device), clip[1]) if clip else None
        m = evaluate(args, ema.student, vae, encode, null, device, args.fid_samples, on_device, rank, world) or {}
        if args.eval_teacher and teacher is not None:
            m.update(teacher_metrics(args, teacher, vae, encode, null, device, rank, world) or {})
        return m
    finish_run(args, rank, world, ema.student, dict(method=args.kd, steps=args.steps, **sizes), evaluations)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="LIFT + PLACE distillation of SD3's MMDiT into fewer joint blocks.")
    add_training_args(parser, teacher_help="hub id or directory: an SD3 pipeline or an SD3Transformer2DModel alone")
    parser.set_defaults(out="runs/sd3")
    add_depth_args(parser, "joint blocks", "0,6,12,18")
    parser.add_argument("--vae", help="AutoencoderKL hub id or directory (an SD3 pipeline's vae/), or pixel-unshuffle")
    parser.add_argument("--text-encoder", help="SD3 pipeline (hub id or directory) whose encoders fill the cache, "
                                               "or stand-in (offline)")
    parser.add_argument("--cache", help="prefix of the latent and prompt-embedding caches (default OUT/cache)")
    parser.add_argument("--flip", type=int, choices=[0, 1], help="random horizontal flip of training images")
    parser.add_argument("--caption-dropout", type=float, default=0.1, help="caption -> empty caption rate")
    parser.add_argument("--shift", type=float, default=3.0, help="the flow schedule's shift (SD3-medium's config: 3.0)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    parser.add_argument("--clip-model", help="CLIP score of the evaluation samples against their captions with this "
                                             "CLIPModel (hub id or directory, e.g. openai/clip-vit-large-patch14)")
    return check_depth_args(parser.parse_args(argv), PRESETS, [("caption_dropout", lambda v: 0 <= v <= 1, "in [0, 1]"),
                                                                ("shift", lambda v: v > 0, "> 0")])


if __name__ == "__main__":
    args = parse_args()
    try:
        sample_only(args) if args.sample_from else main(args)
    except (ValueError, LoadError) as e:
        fail(str(e))
