"""Distil Stable Diffusion 3's MMDiT into one with fewer joint blocks, with LIFT + PLACE on the predicted velocity.

The paper's flow-matching setting (Han, Yeo, Yoo, "LIFT and PLACE", CVPR 2026): teacher SD3-medium's transformer
(24 joint blocks, about 2 B parameters), rectified flow as SD3 trains it; students keep fewer joint blocks,
initialised from them. The text encoders (CLIP-L, CLIP-G, T5-XXL) only fill a cache of prompt embeddings once;
training never holds them.

    # offline, CPU, a few minutes: tiny shipped MMDiT teacher, embedded captions, stand-in text encoder and latents
    python train_sd3.py --preset tiny --out runs/sd3_tiny
    # the paper setting on GPUs: a folder of images with captions (.txt beside each image, or metadata.jsonl)
    torchrun --nproc_per_node 8 train_sd3.py --preset paper --student-depth 12 --data-dir captioned/ \
        --fid-stats ref_stats.npz --out runs/sd3_d12
    # sample a grid from a saved student (captions of the embedded dataset)
    python train_sd3.py --sample-from runs/sd3_tiny/student --vae pixel-unshuffle --out runs/sd3_grid
    # re-train the shipped tiny teacher from its config (random init, all 6 blocks, no KD)
    python train_sd3.py --preset tiny --kd none --init random --student-depth 6 --steps 6000 --out runs/sd3_teacher

Objective (Esser et al. 2024, SD3): x_t = (1 - sigma) x_0 + sigma * noise, the network predicts the velocity
noise - x_0 (MSE, uniform weighting), sigma drawn logit-normal (mean 0, std 1) and shifted by the schedule's shift
(3.0 for SD3-medium) through the scheduler's own table. The KD methods compare student and teacher velocities. A
caption is replaced by the empty caption 10 % of the time (for guidance); the teacher gets the same captions.

A captioned --data-dir becomes two caches, built once by all torchrun ranks and resumable: the VAE latents of every
image and of its mirror image (for --flip), and the three text encoders' prompt embeddings (the encoders are then
freed). --sample-batch-size bounds every VAE and sampling call (8 at 1024^2 on an 80 GB GPU); each sample has its own
seeded noise. Ctrl-C checkpoints and exits 130; offline, metrics.json gets fid null and the reason.
"""
import argparse
import copy
import os
import time
import zlib

import numpy as np
import torch
from tqdm import tqdm

from common import (LOG_COLUMNS, add_training_args, apply_preset, backward, batch_latents, catch_interrupts,
                    check_fid_stats, check_flags, checkpoint_or_stop, clip_gradients, compile_in_place, CSVLog,
                    ema_update, fail, fid_or_null, inject_faults, kd_loss, load_checkpoint, log_row, micro_batches,
                    release_interrupts, report_run, save_grid, setup_device, start_run)
from data import batch_indices, build_cache, cache_latents, list_captioned_folder, make_shapes, to_model_range
from lift import outkd_loss
from metrics import (cached_reference, clip_scores, fid, guided_sample, load_classifier, load_clip, sample_generators,
                     shape_metrics, to_uint8)
from models import (Distillee, FeatureHooks, LoadError, block_alignment, count_params, decode_latents,
                    depth_teacher_student, encode_latents, latent_image_size, load_pretrained, load_vae, percent)
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
                  fid_samples=30_000, n_embedded=50_000, eval_teacher=0, flip=1, sample_batch_size=8, loss_scale="mean"),
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
        tokens, pooled = torch.zeros(len(captions), self.max_tokens, self.joint_dim), torch.zeros(len(captions), self.pooled_dim)
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
        tokens, _, pooled, _ = pipe.encode_prompt(captions, None, None, device=device, do_classifier_free_guidance=False)
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


def evaluate(args, model, vae, encode, null, device, n, clip=None):
    """FID (clean-fid, --fid-stats) for real data; offline: shape-FD and caption -> class accuracy of samples.
    Given a CLIP model (--clip-model), also the mean CLIP score of the same samples against their captions."""
    settings = sampler_settings(args, n)
    scores = []                                      # CLIP scores of the samples, when a CLIP model is given

    def with_clip(metrics):
        if clip and scores:                          # none when FID stopped before sampling (offline)
            metrics.update(clip_score=torch.cat(scores).mean().item(), clip_model=args.clip_model)
        return metrics
    if args.data_dir is not None or args.fid_stats:
        captions = list_captioned_folder(args.data_dir)[1] if args.data_dir else [""]
        made = [0]

        def generate(b):                             # the dataset's captions in order, cycled
            first, made[0] = made[0], made[0] + b
            chosen = [captions[(first + k) % len(captions)] for k in range(b)]
            tok, pool = encode(chosen)
            images = sample(args, model, vae, tok.float(), pool.float(), null, args.seed, device, first)
            if clip:
                scores.append(clip_scores(images, chosen, clip))
            return images.to(device)
        return with_clip(dict(settings, captions="the data's, in order", **fid_or_null(
            lambda: fid(generate, n, mode=args.fid_mode, stats=args.fid_stats, inception=args.fid_inception,
                        batch_size=args.sample_batch_size, device=str(device)), args.fid_mode)))
    _, labels, captions = make_shapes(n, seed=args.seed + 1)                   # captions of unseen images
    tok, pool = encode(captions)
    images = sample(args, model, vae, tok.float(), pool.float(), null, args.seed, device)
    if clip:
        scores.append(clip_scores(images, captions, clip))
    return with_clip(dict(settings, captions="embedded, seed + 1",
                          **shape_metrics(images, load_classifier(device=device), labels)))


def sample_only(args):
    """--sample-from DIR: a grid of guided samples from a saved MMDiT, for captions of the embedded dataset."""
    from diffusers import SD3Transformer2DModel
    device = setup_device(args.device)[2]
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


def main(args):
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from diffusers.training_utils import compute_density_for_timestep_sampling
    # ---- devices, seeds, run dir
    rank, world, device = start_run(args)

    clip = load_clip(args.clip_model) if args.clip_model and args.fid_samples and rank == 0 else None  # fails early; CPU

    # ---- teacher (frozen), student, EMA
    teacher, student, keep = depth_teacher_student(SD3Transformer2DModel, args, device)
    if device.type == "cuda":
        student.enable_gradient_checkpointing()     # activations recomputed per block: memory for batch size
    cfg, depth = teacher.config, teacher.config.num_layers
    teacher_params = count_params(teacher)
    if args.kd == "none" and args.init == "random":
        teacher = None                                # only its config was needed
    vae = load_vae(args.vae).to(device)
    C, S = cfg.in_channels, cfg.sample_size
    image_size = latent_image_size(vae, C, S, device)
    check_group_size(S * S, args.group_size) if args.kd == "place" else None
    feature_kd = "featkd" in args.kd
    encode = text_encoder(args, cfg, device)
    null_tok, null_pool = encode([""])
    example = ((torch.zeros(1, C, S, S, device=device),),
               dict(encoder_hidden_states=null_tok.float().to(device), pooled_projections=null_pool.float().to(device),
                    timestep=torch.zeros(1, device=device)))
    teacher_hooks = None
    if feature_kd:                                   # student block j <-> the teacher block before the next kept one
        teacher_hooks = FeatureHooks([teacher.transformer_blocks[i] for i in block_alignment(keep, depth)])
        teacher(*example[0], **example[1])
    model = Distillee(student, list(student.transformer_blocks) if feature_kd else (),
                      teacher_hooks.pop() if feature_kd else None, example).to(device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    if args.compile:                                 # after the EMA copy, which stays eager
        compile_in_place(model)
    sizes = dict(student_params=count_params(student), teacher_params=teacher_params, kept_blocks=keep,
                 percent_of_teacher=percent(count_params(student), teacher_params))
    if rank == 0:
        print(f"student keeps joint blocks {keep} of {depth}: {sizes['student_params'] / 1e6:.3f} M parameters "
              f"({sizes['percent_of_teacher']} % of the teacher's {teacher_params / 1e6:.3f} M)")

    # ---- data: latents and prompt embeddings, cached (a captioned folder) or in memory (the embedded shapes)
    if args.data_dir is not None:
        files, captions = list_captioned_folder(args.data_dir)
        cache = args.cache or os.path.join(args.out, "cache")
        encode_images = lambda u, g: encode_latents(vae, to_model_range(u).to(device), g, args.sample_batch_size)
        latents = cache_latents(files, image_size, encode_images, cache + "_latents.npy", rank, world)  # once, shared
        text = encode_captions(encode, captions, cache, rank=rank, world=world)
        images, n_data = None, len(files)
    else:
        images, _, captions = make_shapes(args.n_embedded, args.seed, image_size)
        latents, n_data = None, len(images)
        text = encode_captions(encode, captions)
    del encode                                       # the text encoders are not needed past the cache

    # ---- optimizer, resume
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0)
    start = load_checkpoint(args.out, model, ema, optimizer, device) if args.resume else 0
    if rank == 0 and start:
        print(f"resumed from step {start}")
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    flow = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=args.shift)
    log = CSVLog(os.path.join(args.out, "log.csv"), LOG_COLUMNS, start) if rank == 0 else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    first = torch.arange(min(64, n_data))
    grid_text = rows_of(text[0], first, "cpu"), rows_of(text[1], first, "cpu")            # fixed captions for grids
    null = rows_of(text[0], torch.tensor([n_data]), "cpu"), rows_of(text[1], torch.tensor([n_data]), "cpu")

    # ---- training loop
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, disable=rank != 0, desc=args.kd)
    busy, peak = 0.0, None
    interrupt = catch_interrupts()                   # Ctrl-C: finish the step, checkpoint, stop
    for step in bar:
        tic = time.time()
        idx = batch_indices(n_data, args.batch_size, step, args.seed, rank, world)
        x0 = batch_latents(args, idx, latents, images, vae, device)              # (B, C, S, S), flipped or not
        drop = torch.rand(len(idx)) < args.caption_dropout                      # -> the empty caption (last row)
        c = torch.where(drop, torch.full_like(idx, n_data), idx)                 # the same captions for both networks
        enc, pooled = rows_of(text[0], c, device), rows_of(text[1], c, device)
        noise = torch.randn_like(x0)
        u = compute_density_for_timestep_sampling("logit_normal", len(x0), logit_mean=0.0, logit_std=1.0)
        i = (u * flow.config.num_train_timesteps).long()
        t, sigma = flow.timesteps[i].to(device), flow.sigmas[i].to(device).view(-1, 1, 1, 1)   # shifted table
        xt = (1 - sigma) * x0 + sigma * noise                                    # rectified flow, SD3 Eq. 3
        target = noise - x0                                                      # the velocity
        optimizer.zero_grad(set_to_none=True)
        for xt, t, enc, pooled, target in micro_batches(train_model, args.grad_accum, xt, t, enc, pooled, target):
            with autocast:
                v_s, feats_s = train_model(xt, encoder_hidden_states=enc, pooled_projections=pooled, timestep=t)
                v_t, feats_t = None, []
                if teacher is not None and args.kd != "none":
                    with torch.no_grad():
                        v_t = teacher(xt, encoder_hidden_states=enc, pooled_projections=pooled, timestep=t).sample
                        feats_t = teacher_hooks.pop() if feature_kd else []
            diffusion = outkd_loss(v_s, target, reduction=args.loss_scale).loss     # flow-matching MSE on the KD scale
            kd, fit = kd_loss(args, v_s, v_t, feats_s, feats_t) if v_t is not None else (diffusion.new_zeros(()), None)
            loss = diffusion + args.kd_weight * kd
            backward(loss, args, step)
        peak = clip_gradients(model, args, peak)
        optimizer.step()
        ema_update(ema, model, args.ema, step)
        done, busy = step + 1, busy + time.time() - tic
        inject_faults(done)                          # the resume tests' kill or Ctrl-C, when asked for

        if rank == 0 and (done % args.log_every == 0 or done == args.steps):
            row = log_row(args, done, loss, diffusion, kd, fit, v_s, v_t, busy, peak)
            log.write({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("diffusion", "kd", "w") if k in row})
            busy, peak = 0.0, None
        if rank == 0 and done % args.sample_every == 0:
            grid = sample(args, ema.student, vae, *grid_text, null, 0, device)
            save_grid(to_model_range(grid), os.path.join(args.out, f"samples_{done:08d}.png"))
        checkpoint_or_stop(args, done, interrupt, world, device, bar, model, ema, optimizer)

    # ---- final save and evaluation
    release_interrupts()
    if rank == 0:
        ema.student.save_pretrained(os.path.join(args.out, "student"))
        metrics = dict(method=args.kd, steps=args.steps, **sizes)
        if args.fid_samples:
            encode = text_encoder(args, cfg, device)
            null = tuple(v.float() for v in encode([""]))
            clip = (clip[0].to(device), clip[1]) if clip else None
            metrics.update(evaluate(args, ema.student, vae, encode, null, device, args.fid_samples, clip))
            if args.eval_teacher and teacher is not None and args.data_dir is None and not args.fid_stats:
                ref = cached_reference(args.teacher, sampler_settings(args, args.fid_samples),
                                       lambda: evaluate(args, teacher, vae, encode, null, device, args.fid_samples))
                metrics.update(teacher_shape_fd=ref["shape_fd"], teacher_class_accuracy=ref["class_accuracy"])
        report_run(args, metrics)
    if world > 1:
        torch.distributed.destroy_process_group()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="LIFT + PLACE distillation of SD3's MMDiT into fewer joint blocks.")
    add_training_args(parser, teacher_help="hub id or directory: an SD3 pipeline or an SD3Transformer2DModel alone")
    parser.set_defaults(out="runs/sd3")
    student = parser.add_mutually_exclusive_group()
    student.add_argument("--student-depth", type=int, help="keep this many evenly spaced joint blocks")
    student.add_argument("--keep-blocks", type=lambda s: [int(i) for i in s.split(",")],
                         help="explicit joint blocks to keep, e.g. 0,6,12,18")
    parser.add_argument("--init", choices=["teacher", "random"], default="teacher",
                        help="student weights from the kept teacher blocks, or random (to train a teacher)")
    parser.add_argument("--vae", help="AutoencoderKL hub id or directory (an SD3 pipeline's vae/), or pixel-unshuffle")
    parser.add_argument("--text-encoder", help="SD3 pipeline (hub id or directory) whose encoders fill the cache, "
                                               "or stand-in (offline)")
    parser.add_argument("--cache", help="prefix of the latent and prompt-embedding caches (default OUT/cache)")
    parser.add_argument("--flip", type=int, choices=[0, 1], help="random horizontal flip of training images")
    parser.add_argument("--sample-batch-size", type=int, help="images per sampling call and per VAE call (memory); "
                                                              "the samples do not depend on it")
    parser.add_argument("--caption-dropout", type=float, default=0.1, help="caption -> empty caption rate")
    parser.add_argument("--shift", type=float, default=3.0, help="the flow schedule's shift (SD3-medium's config: 3.0)")
    parser.add_argument("--sample-steps", type=int)
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    parser.add_argument("--clip-model", help="CLIP score of the evaluation samples against their captions with this "
                                             "CLIPModel (hub id or directory, e.g. openai/clip-vit-large-patch14)")
    parser.add_argument("--sample-from", help="only sample: a saved student directory; writes OUT/samples.png")
    args = parser.parse_args(argv)
    apply_preset(args, PRESETS)
    if args.keep_blocks:
        args.student_depth = None
    check_flags(args, [("student_depth", lambda v: v >= 1, ">= 1"), ("sample_steps", lambda v: v >= 1, ">= 1"),
                       ("sample_batch_size", lambda v: v >= 1, ">= 1"), ("guidance", lambda v: v >= 0, ">= 0"),
                       ("caption_dropout", lambda v: 0 <= v <= 1, "in [0, 1]"), ("shift", lambda v: v > 0, "> 0")])
    check_fid_stats(args)
    return args


if __name__ == "__main__":
    args = parse_args()
    try:
        sample_only(args) if args.sample_from else main(args)
    except (ValueError, LoadError) as e:
        fail(str(e))
