"""Networks: loading teachers, making students from them (narrower, pruned, fewer blocks), feature hooks for KD.

The networks themselves are diffusers' (UNet2DModel, DiTTransformer2DModel, SD3Transformer2DModel); this file only
loads them, derives students and taps intermediate outputs.
"""
import copy
import math
import os

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

# google/ddpm-cifar10-32's config.json (Ho et al. 2020's CIFAR-10 U-Net, 35.7 M parameters), so the paper preset's
# shapes can be built and checked without its weights.
DDPM_CIFAR10_CONFIG = dict(
    sample_size=32, in_channels=3, out_channels=3, center_input_sample=False, time_embedding_type="positional",
    freq_shift=1, flip_sin_to_cos=False,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), block_out_channels=(128, 256, 256, 256),
    layers_per_block=2, mid_block_scale_factor=1, downsample_padding=0, act_fn="silu", attention_head_dim=None,
    norm_num_groups=32, norm_eps=1e-6)


class LoadError(RuntimeError):
    """Weights that cannot be had; the scripts print its one-line message and exit."""


def _source_subfolder(source, subfolder):
    """A local directory's subfolder holding config.json (root, then `subfolder`), or raise LoadError."""
    for sub in ([None, subfolder] if subfolder else [None]):
        if os.path.isfile(os.path.join(source, sub or "", "config.json")):
            return sub
    raise LoadError(f"{source} holds no config.json (nor {subfolder}/config.json): not a saved diffusers model")


def _hub_subfolder(repo_id, subfolder):
    """A hub repo's subfolder holding config.json (root, then `subfolder`), or raise the hub's error. Once the hub is
    out of reach (or HF_HUB_OFFLINE is set) only the cache is read, so a missing network costs one timeout."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    cache_only = False
    for sub in ([None, subfolder] if subfolder else [None]):
        try:
            hf_hub_download(repo_id, "config.json", subfolder=sub, local_files_only=cache_only)
            return sub
        except LocalEntryNotFoundError as e:  # not cached, and the hub out of reach
            cache_only, error = True, e
        except EntryNotFoundError as e:       # the repo has no such file
            error = e
    raise error


def load_pretrained(cls, source, subfolder=None, config_only=False, hint="pass a local directory or use --preset tiny"):
    """cls.from_pretrained(source) for a hub id or a local directory; a one-line LoadError instead of a stack trace.

    A directory or hub repo may hold the model at its root or under `subfolder` (as in a pipeline). Hub ids honour
    HF_HUB_OFFLINE (then only the local cache is read). config_only=True returns the config dict, not weights.
    """
    local = os.path.isdir(source)
    sub = _source_subfolder(source, subfolder) if local else None
    try:
        if not local:
            sub = _hub_subfolder(source, subfolder)
        if config_only:
            return dict(cls.load_config(source, subfolder=sub))
        return cls.from_pretrained(source, subfolder=sub)
    except Exception as e:  # hub, network and format errors all end here with one actionable line
        if local:
            raise LoadError(f"cannot load {cls.__name__} from {source}: "
                            f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        why = ("HF_HUB_OFFLINE is set and it is not in the local cache" if offline
               else "no network or no such repository")
        raise LoadError(f"cannot load {cls.__name__} '{source}' from the hub ({why}): {hint}") from None


def count_params(model):
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model, *inputs, **kwargs):
    """Multiply-accumulates of one forward pass (FLOPs / 2 as torch's flop counter counts them)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs, **kwargs)
    return counter.get_total_flops() // 2


# ---------------------------------------------------------------- U-Net students
TIME_FEATURES_KEY = "time_features_dim"   # config entry of students whose timestep features stay the teacher's
PRUNED_KEY = "pruned_from_teacher"   # config entry of a pruned student: how it was pruned; its widths are its weights'


def _groups(channels, max_groups):
    """The largest group count <= max_groups that divides every channel count (GroupNorm needs it)."""
    return max(g for g in range(1, max_groups + 1) if all(c % g == 0 for c in channels))


MIN_TIME_FEATURES = 8   # sinusoidal timestep features (4 frequencies) a student keeps at least


def scale_unet_config(config, factor):
    """A UNet2DModel config with every width multiplied by factor (at least 1), norm groups kept valid.

    The sinusoidal timestep features are as wide as block_out_channels[0]; below MIN_TIME_FEATURES they would hold
    one or two frequencies (and with freq_shift=1, two channels divide by zero), so a student that narrow keeps the
    teacher's parameter-free features (TIME_FEATURES_KEY, read by build_unet). The paper's students never are.
    """
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    widths = [max(1, round(c * factor)) for c in config["block_out_channels"]]
    if widths[0] < MIN_TIME_FEATURES and config.get("time_embedding_type", "positional") == "positional":
        config.setdefault(TIME_FEATURES_KEY, config["block_out_channels"][0])
    config["block_out_channels"] = tuple(widths)
    config["norm_num_groups"] = _groups(widths, config.get("norm_num_groups", 32))
    if config.get("attention_head_dim"):
        config["attention_head_dim"] = max(1, round(config["attention_head_dim"] * factor))
    return config


def width_student(teacher_config, factor, dropout=0.0):
    """A randomly initialised UNet2DModel with the teacher's architecture and every width scaled by factor."""
    return build_unet(dict(scale_unet_config(teacher_config, factor), dropout=dropout))


def set_dropout(model, p):
    """Set the probability of every nn.Dropout in model (students fine-tune with dropout, Diff-Pruning's recipe)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
    if hasattr(model, "register_to_config") and "dropout" in getattr(model, "config", {}):
        model.register_to_config(dropout=p)
    return model


def build_unet(config):
    """UNet2DModel from a config. A student's config may name the width of its sinusoidal timestep features
    (TIME_FEATURES_KEY: a very narrow width student keeps the teacher's), which then differs from
    block_out_channels[0]; time_proj and time_embedding.linear_1 follow it. Such models load with load_unet."""
    from diffusers import UNet2DModel
    from diffusers.models.embeddings import Timesteps
    config = {k: v for k, v in config.items() if not k.startswith("_") and k != PRUNED_KEY}
    time_width = config.pop(TIME_FEATURES_KEY, None)
    model = UNet2DModel(**config)
    if time_width is not None and time_width != model.time_embedding.linear_1.in_features:
        model.time_proj = Timesteps(time_width, config.get("flip_sin_to_cos", True), config.get("freq_shift", 0))
        model.time_embedding.linear_1 = nn.Linear(time_width, model.time_embedding.linear_1.out_features)
    if time_width is not None:
        model.register_to_config(**{TIME_FEATURES_KEY: time_width})     # save_pretrained records it
    return model


def load_unet(source, subfolder="unet", **kwargs):
    """A UNet2DModel from a hub id or directory, including the students from_pretrained cannot rebuild: narrow ones
    (TIME_FEATURES_KEY) and pruned ones (PRUNED_KEY: the teacher's config, every layer's width read
    from the weights)."""
    from diffusers import UNet2DModel
    from safetensors.torch import load_file
    config = load_pretrained(UNet2DModel, source, subfolder, config_only=True, **kwargs)
    if TIME_FEATURES_KEY not in config and PRUNED_KEY not in config:
        return load_pretrained(UNet2DModel, source, subfolder, **kwargs)
    model = build_unet(config)
    state = load_file(os.path.join(source, _source_subfolder(source, subfolder) or "",
                                   "diffusion_pytorch_model.safetensors"))
    if PRUNED_KEY in config:
        resize_to_weights(model, state, config[PRUNED_KEY].get("norm_min_channels", 1)).register_to_config(
            **{PRUNED_KEY: config[PRUNED_KEY]})
    model.load_state_dict(state)
    return model


# ---------------------------------------------------------------- pruned U-Net students (Diff-Pruning, as the paper)

def fix_channel_attributes(model):
    """After channels were removed: diffusers' resamplers assert their stored channel count, and Attention keeps its
    width and softmax scale as attributes (the scale becomes 1/sqrt(kept width), as SDPA computes it anyway)."""
    from diffusers.models.attention_processor import Attention
    from diffusers.models.downsampling import Downsample2D
    from diffusers.models.upsampling import Upsample2D
    for m in model.modules():
        if isinstance(m, (Downsample2D, Upsample2D)) and getattr(m, "conv", None) is not None:
            m.channels, m.out_channels = m.conv.in_channels, m.conv.out_channels
        elif isinstance(m, Attention):
            m.inner_dim, m.query_dim = m.to_q.out_features, m.to_q.in_features
            m.scale = (m.inner_dim // m.heads) ** -0.5
    return model


def resize_to_weights(model, state, norm_min_channels=1):
    """Shrink every Conv2d, Linear and GroupNorm of model to the shapes its weights have in `state` (a pruned model's
    state dict), so the state loads. GroupNorms keep their group count, as the pruner keeps it, unless that leaves
    fewer than norm_min_channels per group: then they get the most groups of at least that many channels (a study
    contrast, PRUNED_KEY's "norm_min_channels"; the paper's 90 % students have one channel per group)."""
    for name, m in list(model.named_modules()):
        w = state.get(f"{name}.weight")
        if w is None or not isinstance(m, (nn.Conv2d, nn.Linear, nn.GroupNorm)) or w.shape == m.weight.shape:
            continue
        if isinstance(m, nn.Conv2d):
            new = nn.Conv2d(w.shape[1], w.shape[0], m.kernel_size, m.stride, m.padding, bias=m.bias is not None)
        elif isinstance(m, nn.Linear):
            new = nn.Linear(w.shape[1], w.shape[0], bias=m.bias is not None)
        else:
            groups = max(g for g in range(1, m.num_groups + 1)
                         if w.shape[0] % g == 0 and w.shape[0] // g >= norm_min_channels)
            new = nn.GroupNorm(groups, w.shape[0], m.eps, m.affine)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
    return fix_channel_attributes(model)


def taylor_gradients(model, x0, alphas_cumprod, t_stride=1, seed=0):
    """Accumulate in model's .grad what Diff-Pruning's Taylor importance needs: the gradient of the noise-prediction
    loss summed per sample (batch mean) at every t = 0, t_stride, ... < T, on one batch x0 with one noise draw.

    t_stride 1 is the paper's pass (T = 1000 forward + backward passes); a coarser stride trades exactness for time.
    """
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0.device)
    model.zero_grad(set_to_none=True)
    for t in range(0, len(alphas_cumprod), t_stride):
        a = alphas_cumprod[t]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise                          # q(x_t | x_0), DDPM Eq. 4
        eps = model(xt, torch.full((len(x0),), t, device=x0.device)).sample
        (noise - eps).pow(2).sum(dim=(1, 2, 3)).mean().backward()


def prune_unet(teacher, ratio, importance="taylor", x0=None, alphas_cumprod=None, t_stride=1, seed=0):
    """A student pruned from a UNet2DModel as Diff-Pruning prunes (the paper's students, PAPER.md), weights inherited.

    torch-pruning's dependency graph couples every layer that must lose the same channels; each coupled group is
    scored by |w * dL/dw| summed over its weights (importance="taylor", dL from taylor_gradients on x0) or by the
    L2 norm of its weights ("magnitude", Diff-Pruning's baseline), and one pruning step removes, in every group of
    C channels, C - int(C * (1 - ratio)) of them: the lowest-scoring. conv_out is left alone. A group that feeds a
    GroupNorm of g groups loses floor(that / g) channels in the same slots of every norm group, so the group count
    stays and at 90 % each norm group keeps one channel (what torch-pruning did when the authors pruned; its 1.6
    release counts per norm group instead and refuses to prune these layers at all, hence the selection here).
    Returns a pruned copy; the teacher is not modified.
    """
    import torch_pruning as tp
    if not 0 < ratio < 1:
        raise ValueError(f"--prune-ratio {ratio} must be in (0, 1)")
    device = next(teacher.parameters()).device
    model = copy.deepcopy(teacher).float().eval().requires_grad_(True)   # torch-pruning traces with autograd
    size = model.config.sample_size if isinstance(model.config.sample_size, int) else model.config.sample_size[0]
    example = {"sample": torch.randn(1, model.config.in_channels, size, size, device=device),
               "timestep": torch.ones(1, dtype=torch.long, device=device)}
    with torch.enable_grad():
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        if importance == "taylor":
            if x0 is None:
                raise ValueError("Taylor pruning needs a batch of training images (x0) and the noise schedule")
            taylor_gradients(model, x0.to(device).float(), alphas_cumprod.to(device), t_stride, seed)
            score = tp.importance.TaylorImportance()                  # |w * grad| summed (Diff-Pruning's "taylor")
        elif importance == "magnitude":
            score = tp.importance.MagnitudeImportance(p=2)
        else:
            raise ValueError(f"unknown pruning importance {importance!r}: taylor or magnitude")
    norm_groups = {m: m.num_groups for m in model.modules() if isinstance(m, nn.GroupNorm)}
    plan = []                                                    # chosen on the unpruned graph, applied after
    for group in graph.get_all_groups(ignored_layers=[model.conv_out], root_module_types=[nn.Conv2d, nn.Linear]):
        root, fn = group[0].dep.target.module, group[0].dep.handler
        C = graph.get_out_channels(root)
        g = max(norm_groups.get(dep.target.module, 1) for dep, _ in group)    # norm groups that must lose alike
        n = min((C - int(C * (1 - ratio))) // g, C // g - 1)                  # per norm group; each keeps one at least
        if n <= 0:
            continue
        with torch.no_grad():
            slot = score(group).view(g, C // g).mean(0)               # (C / g,): one score per slot of a norm group
        drop = torch.argsort(slot)[:n]
        plan.append((root, fn, torch.cat([drop + b * (C // g) for b in range(g)]).tolist()))
    with torch.no_grad():
        for root, fn, idxs in plan:
            graph.get_pruning_group(root, fn, idxs).prune()
    model.zero_grad(set_to_none=True)
    fix_channel_attributes(model).register_to_config(**{PRUNED_KEY: dict(ratio=ratio, importance=importance)})
    return model.requires_grad_(True).train(teacher.training)


# ---------------------------------------------------------------- transformers: configs, depth students, latents
# facebook/DiT-XL-2-256's transformer config (Peebles & Xie 2023, XL/2): 28 blocks, width 1152, patch 2 on 32x32x4
# latents, 1000 classes (+1 null class for guidance), eps and learned variance out (8 channels).
DIT_XL2_CONFIG = dict(num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
                      sample_size=32, patch_size=2, num_embeds_ada_norm=1000, norm_type="ada_norm_zero",
                      norm_elementwise_affine=False, activation_fn="gelu-approximate", attention_bias=True)
# stabilityai/stable-diffusion-3-medium-diffusers' transformer config: 24 joint blocks, width 1536, 16-channel latents.
SD3_MEDIUM_CONFIG = dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24, attention_head_dim=64,
                         num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                         pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=192)


def evenly_spaced(depth, n):
    """TinyFusion's uniform choice: n of `depth` block indices, evenly spaced, starting at block 0."""
    if not 1 <= n <= depth:
        raise ValueError(f"--student-depth {n} must be between 1 and the teacher's {depth} blocks")
    return [i * depth // n for i in range(n)]


def check_keep(keep, depth):
    """Validate an explicit --keep-blocks list: distinct, increasing, inside the teacher."""
    if not keep or sorted(set(keep)) != list(keep) or keep[0] < 0 or keep[-1] >= depth:
        raise ValueError(f"--keep-blocks {keep}: needs distinct increasing block indices in [0, {depth - 1}]")
    return list(keep)


def depth_student(teacher, keep):
    """The teacher (DiT or SD3 transformer) with only the blocks `keep`, initialised from them; embedders, final layer
    and everything outside the blocks copied. In SD3 the last block is context-pre-only (it does not update the
    caption tokens): when the kept last block was not, its caption-side modulation starts from that block's
    pre-attention scale and shift, and its caption MLP and output projection are dropped, as in the teacher's last
    block.
    """
    config = {k: v for k, v in teacher.config.items() if not k.startswith("_")}
    config["num_layers"] = len(keep)
    if config.get("dual_attention_layers"):          # SD3.5: renumber the blocks that have a second attention
        config["dual_attention_layers"] = tuple(j for j, i in enumerate(keep) if i in config["dual_attention_layers"])
    student = type(teacher).from_config(config).to(next(teacher.parameters()).device)
    source = teacher.state_dict()
    state = {}
    for key, value in student.state_dict().items():
        parts = key.split(".")
        if parts[0] == "transformer_blocks":
            parts[1] = str(keep[int(parts[1])])
        src = source[".".join(parts)]
        if src.shape != value.shape and "norm1_context.linear" in key:
            # AdaLayerNormZero's (shift, scale, gate)_msa, (shift, scale, gate)_mlp
            # -> AdaLayerNormContinuous's (scale, shift)
            shift, scale = src.chunk(6, dim=0)[:2]
            src = torch.cat([scale, shift], dim=0)
        state[key] = src.clone()
    student.load_state_dict(state, strict=True)
    return student.train(teacher.training)


def depth_teacher_student(cls, args, device):
    """(teacher, student, kept blocks) for the transformer scripts. The teacher comes frozen from --teacher; with
    --init random and --kd none only its config is read (the returned teacher is then a random model of that shape,
    good for sizes only). The student keeps --keep-blocks or --student-depth evenly spaced blocks, initialised from
    them (--init teacher) or at random."""
    if args.init == "teacher" or args.kd != "none":
        teacher = load_pretrained(cls, args.teacher, subfolder="transformer").to(device)
    else:
        teacher = cls.from_config(load_pretrained(cls, args.teacher, subfolder="transformer",
                                                  config_only=True)).to(device)
    teacher.requires_grad_(False).eval()
    depth = teacher.config.num_layers
    keep = check_keep(args.keep_blocks, depth) if args.keep_blocks else evenly_spaced(depth, args.student_depth)
    student = depth_student(teacher, keep) if args.init == "teacher" else \
        cls.from_config({**teacher.config, "num_layers": len(keep)}).to(device)
    return teacher, student.train(), keep


def block_alignment(keep, depth):
    """For feature KD: teacher block whose output each student block matches, the last before the next kept block."""
    return [nxt - 1 for nxt in [*keep[1:], depth]]


def matched_blocks(student, teacher, keep):
    """Feature KD's layers of a depth student: (its blocks, the teacher block each one matches, block_alignment)."""
    aligned = block_alignment(keep, teacher.config.num_layers)
    return list(student.transformer_blocks), [teacher.transformer_blocks[i] for i in aligned]


def dit_params(model):
    """Parameters as the DiT paper counts them: diffusers copies the timestep/class embedder into every block (DiT
    shares one), so count it once, and DiT's fixed positional embedding is a parameter there (a buffer here)."""
    emb = sum(p.numel() for p in model.transformer_blocks[0].norm1.emb.parameters())
    return count_params(model) - (len(model.transformer_blocks) - 1) * emb + model.pos_embed.pos_embed.numel()


class PixelUnshuffleLatents(nn.Module):
    """The offline stand-in for a VAE, named as such: the invertible latent space pixel_unshuffle(x, 2), so 3x32x32
    images are 12x16x16 latents. No weights, nothing learned; `encode`/`decode` mirror the AutoencoderKL calls used."""
    scaling_factor, shift_factor = 1.0, 0.0

    def __init__(self, factor=2):
        super().__init__()
        self.factor = factor

    def encode(self, x):
        return nn.functional.pixel_unshuffle(x, self.factor)

    def decode(self, z):
        return nn.functional.pixel_shuffle(z, self.factor)


def load_vae(source, subfolder="vae"):
    """An AutoencoderKL (hub id or directory), or the PixelUnshuffleLatents stand-in when source is
    "pixel-unshuffle"."""
    if source == "pixel-unshuffle":
        return PixelUnshuffleLatents()
    from diffusers import AutoencoderKL
    vae = load_pretrained(AutoencoderKL, source, subfolder=subfolder,
                          hint="pass a local VAE directory, or --vae pixel-unshuffle (the offline stand-in)")
    return vae.requires_grad_(False).eval()


def latent_image_size(vae, channels, size, device="cpu"):
    """The image size whose latents are (channels, size, size); raises ValueError when the VAE cannot give them."""
    factor = 2 if isinstance(vae, PixelUnshuffleLatents) else 2 ** (len(vae.config.block_out_channels) - 1)
    probe = encode_latents(vae, torch.zeros(1, 3, size * factor, size * factor, device=device))
    if probe.shape[1:] != (channels, size, size):
        raise ValueError(f"the VAE gives {tuple(probe.shape[1:])} latents but the teacher takes "
                         f"{(channels, size, size)}: use --vae pixel-unshuffle only with a teacher of in_channels 12 "
                         "on 16x16 (or pass the matching VAE)")
    return size * factor


@torch.no_grad()
def encode_latents(vae, x, generator=None, batch_size=None):
    """Images in [-1, 1] -> the latents diffusion runs on: (z - shift) * scale. The scale brings the VAE's latents
    to about unit variance (DiT's sd-vae-ft-ema: 0.18215; SD3's VAE: 1.5305 with shift 0.0609, from their configs).
    batch_size: images per VAE call (memory). generator: one, or a list of one per image, whose draws then do not
    depend on batch_size."""
    if batch_size and len(x) > batch_size:
        per_image = isinstance(generator, list)
        return torch.cat([encode_latents(vae, x[i:i + batch_size], generator[i:i + batch_size] if per_image
                                         else generator) for i in range(0, len(x), batch_size)])
    if isinstance(vae, PixelUnshuffleLatents):
        return vae.encode(x)
    z = vae.encode(x).latent_dist.sample(generator)
    return (z - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(vae, z):
    """Latents -> images in [-1, 1], the inverse of encode_latents."""
    if isinstance(vae, PixelUnshuffleLatents):
        return vae.decode(z).clamp(-1, 1)
    z = z / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    return vae.decode(z.to(vae.dtype)).sample.float().clamp(-1, 1)


# ---------------------------------------------------------------- feature KD
def unet_feature_layers(unet):
    """The outputs FitNet matches in a UNet2DModel, as the authors tap their DDPM U-Net: every resnet, attention and
    resample block of the down path, the middle block and the up path (41 on the CelebA-64 U-Net, 34 on CIFAR-10's)."""
    return [m for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
            for kind in ("resnets", "attentions", "downsamplers", "upsamplers")
            for m in (getattr(block, kind, None) or [])
            if m is not None]


class FeatureHooks:
    """Forward hooks that keep the latest output of each given module (of a tuple, its last element: the image
    tokens of SD3's joint blocks, which return (context, image))."""

    def __init__(self, modules):
        self.outputs = [None] * len(modules)
        self.handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(modules)]

    def _hook(self, i):
        def store(module, inputs, output):
            self.outputs[i] = output[-1] if isinstance(output, (tuple, list)) else output
        return store

    def pop(self):
        """The stored outputs, cleared (so a stale feature is never matched twice)."""
        out, self.outputs = self.outputs, [None] * len(self.outputs)
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def _adapter(student_feature, teacher_feature, fitnet=False):
    """A trainable map from a student feature's width to the teacher's: 1x1 conv (maps) or linear (tokens); the
    identity where the widths agree. fitnet=True: always a bias-free 1x1 conv initialised U(-0.005, 0.005), the
    authors' FitNet adapter."""
    cs, ct = (student_feature.shape[1 if student_feature.dim() == 4 else -1],
              teacher_feature.shape[1 if teacher_feature.dim() == 4 else -1])
    if fitnet:
        conv = nn.Conv2d(cs, ct, 1, bias=False)
        nn.init.uniform_(conv.weight, -0.005, 0.005)
        return conv
    if cs == ct:
        return nn.Identity()
    return nn.Conv2d(cs, ct, 1) if student_feature.dim() == 4 else nn.Linear(cs, ct)


class Distillee(nn.Module):
    """The trained part: the student plus feature adapters. forward -> (student output, adapted student features).

    One module, so DDP, the optimizer, EMA and checkpoints all see the adapters. With no feature layers it is the
    student alone and returns (output, []).
    """

    def __init__(self, student, feature_layers=(), teacher_features=None, example=None, fitnet=False):
        super().__init__()
        self.student = student
        self.hooks = FeatureHooks(list(feature_layers)) if feature_layers else None
        self.adapters = nn.ModuleList()
        if self.hooks:                                  # widths from one example forward pass
            with torch.no_grad():
                self.student(*example[0], **example[1])
            self.adapters.extend(_adapter(s, t, fitnet) for s, t in zip(self.hooks.pop(), teacher_features))

    def forward(self, *args, **kwargs):
        out = self.student(*args, **kwargs)
        out = out.sample if hasattr(out, "sample") else out[0]
        if not self.hooks:
            return out, []
        return out, [a(f) for a, f in zip(self.adapters, self.hooks.pop())]


def feature_kd_loss(student_features, teacher_features, reduction="mean"):
    """Feature KD: squared error between adapted student and teacher features, summed over layers.

    reduction="mean": each layer's mean squared error; "sum": each layer's sum per sample, then the batch mean.
    """
    total = 0.0
    for fs, ft in zip(student_features, teacher_features):
        se = (fs.float() - ft.detach().float()).pow(2)
        total = total + (se.mean() if reduction == "mean" else se.sum() / se.shape[0])
    return total


def percent(n, total):
    """n as a percentage of total, rounded to two decimals."""
    return round(100.0 * n / total, 2) if total else math.nan


# ---------------------------------------------------------------- the DDIM CelebA-64 teacher (paper Table 1)
# ermongroup/ddim's configs/celeba.yml `Model` (ch 128, ch_mult [1, 2, 2, 2, 4], 2 res blocks, attention at 16x16,
# dropout 0.1, resamp_with_conv) as a UNet2DModel: 78,700,803 parameters (78.7 M), the same tensors as DDIM's.
DDIM_CELEBA64_CONFIG = dict(
    sample_size=64, in_channels=3, out_channels=3, center_input_sample=False, time_embedding_type="positional",
    freq_shift=1, flip_sin_to_cos=False,
    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    block_out_channels=(128, 256, 256, 256, 512), layers_per_block=2, mid_block_scale_factor=1, downsample_padding=0,
    dropout=0.1, act_fn="silu", attention_head_dim=None, norm_num_groups=32, norm_eps=1e-6)

_DDIM_RESNET = (("norm1", "norm1"), ("conv1", "conv1"), ("temb_proj", "time_emb_proj"), ("norm2", "norm2"),
                ("conv2", "conv2"))
_DDIM_ATTENTION = (("norm", "group_norm"), ("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("proj_out", "to_out.0"))


def _ddim_module_map(config):
    """{DDIM module path: UNet2DModel module path} for every module (each has a weight and a bias) of DDIM's `Model`."""
    widths, layers, n = config["block_out_channels"], config["layers_per_block"], len(config["block_out_channels"])
    pairs = {"temb.dense.0": "time_embedding.linear_1", "temb.dense.1": "time_embedding.linear_2",
             "conv_in": "conv_in", "norm_out": "conv_norm_out", "conv_out": "conv_out"}

    def resnet(src, dst, c_in, c_out):          # a 1x1 nin_shortcut only where the width changes
        shortcut = (("nin_shortcut", "conv_shortcut"),) if c_in != c_out else ()
        pairs.update({f"{src}.{a}": f"{dst}.{b}" for a, b in _DDIM_RESNET + shortcut})

    def attention(src, dst):
        pairs.update({f"{src}.{a}": f"{dst}.{b}" for a, b in _DDIM_ATTENTION})

    c, skips = widths[0], [widths[0]]           # skips: widths the down path leaves for the up path's concatenations
    for i, kind in enumerate(config["down_block_types"]):
        for j in range(layers):
            resnet(f"down.{i}.block.{j}", f"down_blocks.{i}.resnets.{j}", c, widths[i])
            c = widths[i]
            skips.append(c)
            if kind.startswith("Attn"):
                attention(f"down.{i}.attn.{j}", f"down_blocks.{i}.attentions.{j}")
        if i < n - 1:                           # the last level has no downsample
            pairs[f"down.{i}.downsample.conv"] = f"down_blocks.{i}.downsamplers.0.conv"
            skips.append(c)
    resnet("mid.block_1", "mid_block.resnets.0", c, c)
    attention("mid.attn_1", "mid_block.attentions.0")
    resnet("mid.block_2", "mid_block.resnets.1", c, c)
    # DDIM builds `up` by prepending, so up.i is level i counted from the top (full resolution), while diffusers'
    # up_blocks run in execution order, from the bottom: up_blocks.k is up.(n-1-k). Each has layers + 1 resnets.
    for k, kind in enumerate(config["up_block_types"]):
        i = n - 1 - k
        for j in range(layers + 1):
            resnet(f"up.{i}.block.{j}", f"up_blocks.{k}.resnets.{j}", c + skips.pop(), widths[i])
            c = widths[i]
            if kind.startswith("Attn"):
                attention(f"up.{i}.attn.{j}", f"up_blocks.{k}.attentions.{j}")
        if i > 0:                               # level 0 has no upsample
            pairs[f"up.{i}.upsample.conv"] = f"up_blocks.{k}.upsamplers.0.conv"
    return pairs


def ddim_to_diffusers(state_dict, config):
    """A DDIM `Model` state dict (no `module.` prefix) as a UNet2DModel(**config) one; unknown keys pass unchanged."""
    pairs, out = _ddim_module_map(config), {}
    for key, value in state_dict.items():
        module, _, leaf = key.rpartition(".")
        name = pairs.get(module)
        if name is None:
            out[key] = value
            continue
        if leaf == "weight" and name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            value = value.reshape(value.shape[:2])      # DDIM's 1x1 Conv2d (C, C, 1, 1) -> diffusers' Linear (C, C)
        out[f"{name}.{leaf}"] = value
    return out


def _ddim_config(state_dict, sample_size):
    """DDIM_CELEBA64_CONFIG with channels, widths, depth and attention levels read off a DDIM state dict."""
    levels = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("down.") and k.split(".")[1].isdigit()})
    conv_in = state_dict["conv_in.weight"]
    widths = tuple(int(state_dict[f"down.{i}.block.0.conv1.weight"].shape[0]) for i in levels)
    if not widths or widths[0] != conv_in.shape[0]:     # diffusers ties conv_in and the time embedding to level 0
        raise LoadError(f"a DDIM model needs ch_mult[0] == 1 to be a UNet2DModel (levels' widths {widths})")
    attn = [any(k.startswith(f"down.{i}.attn.") for k in state_dict) for i in levels]
    return dict(DDIM_CELEBA64_CONFIG, sample_size=sample_size, in_channels=int(conv_in.shape[1]),
                out_channels=int(state_dict["conv_out.weight"].shape[0]), block_out_channels=widths,
                layers_per_block=len({k.split(".")[3] for k in state_dict if k.startswith("down.0.block.")}),
                down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
                up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)))


def _some(keys, n=4):
    """The first n keys, and how many more."""
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "") if keys else "none"


def load_ddim_checkpoint(path, weights="ema", sample_size=64):
    """A UNet2DModel (eval mode) from an ermongroup/ddim checkpoint: a state dict or DDIM's training list."""
    from diffusers import UNet2DModel
    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', not {weights!r}")
    # weights_only=True needs no fallback: DDIM's [model, optimizer, epoch, step, ema] list holds only state dicts
    # (tensors, numbers, lists, dicts) and ints, all of which the weights-only unpickler accepts.
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise LoadError(f"cannot load {path} as a torch checkpoint: {type(e).__name__}: "
                        f"{(str(e).splitlines() or [''])[0]}") from None
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], dict):
        if weights == "ema" and (len(obj) < 5 or not isinstance(obj[-1], dict)):
            raise LoadError(f"{path} holds no EMA weights (a {len(obj)}-entry DDIM list): pass weights='model'")
        obj = obj[-1] if weights == "ema" else obj[0]
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in obj.items())):
        raise LoadError(f"{path} holds neither a state dict nor a DDIM [model, optimizer, epoch, step, ema] list")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    try:
        config = _ddim_config(state, sample_size)
    except (KeyError, IndexError) as e:
        raise LoadError(f"{path} is not a DDIM `Model` state dict (no {e})") from None
    expected = [f"{m}.{leaf}" for m in _ddim_module_map(config) for leaf in ("weight", "bias")]
    known = set(expected)
    missing, unexpected = [k for k in expected if k not in state], [k for k in state if k not in known]
    if missing or unexpected:
        raise LoadError(f"{path} does not match DDIM's `Model`: missing keys: {_some(missing)}; "
                        f"unexpected keys: {_some(unexpected)}")
    model = UNet2DModel(**config)
    try:
        model.load_state_dict(ddim_to_diffusers(state, config))
    except RuntimeError as e:                   # tensors whose shapes disagree with the widths read above
        raise LoadError(f"{path}: {' '.join(str(e).split())}") from None
    return model.eval()
