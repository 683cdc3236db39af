"""Loading ermongroup/ddim checkpoints (the paper's CelebA-64 teacher) as a diffusers UNet2DModel.

The reference below is an independent forward of the original DDPM/DDIM `Model`, written from its description,
whose state_dict keys are the original layout (down.i.block.j, up.i.attn.j, mid.block_1, temb.dense.0, ...).
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import UNet2DModel

from models import DDIM_CELEBA64_CONFIG, LoadError, count_params, ddim_to_diffusers, load_ddim_checkpoint

TINY = dict(ch=32, ch_mult=(1, 2), num_res_blocks=2, attn_resolutions=(8,), resolution=16)


def norm(c):
    return nn.GroupNorm(32, c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, c_in, c_out, temb):
        super().__init__()
        self.norm1, self.conv1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(temb, c_out)
        self.norm2, self.conv2 = norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        if c_in != c_out:
            self.nin_shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x))) + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.norm(x)
        q, k, v = (m(h).flatten(2) for m in (self.q, self.k, self.v))            # (b, c, positions)
        w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)  # query i attends to key j
        return x + self.proj_out(torch.einsum("bij,bcj->bci", w, v).reshape(b, c, hh, ww))


def conv_holder(conv):
    holder = nn.Module()
    holder.conv = conv
    return holder


class DDPMModel(nn.Module):
    """The original U-Net: levels top-down in `down` and in `up` (up.i is level i), each with its blocks."""

    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, resolution, in_ch=3, out_ch=3):
        super().__init__()
        self.ch, temb = ch, 4 * ch
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, temb), nn.Linear(temb, temb)])
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        c, res, skips, self.down, up = ch, resolution, [ch], nn.ModuleList(), []
        for i, mult in enumerate(ch_mult):
            level = nn.Module()
            level.block, level.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                level.block.append(ResBlock(c, ch * mult, temb))
                c = ch * mult
                skips.append(c)
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(c))
            if i < len(ch_mult) - 1:
                level.downsample = conv_holder(nn.Conv2d(c, c, 3, stride=2))
                res //= 2
                skips.append(c)
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResBlock(c, c, temb), AttnBlock(c), ResBlock(c, c, temb)
        for i in reversed(range(len(ch_mult))):
            level = nn.Module()
            level.block, level.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                level.block.append(ResBlock(c + skips.pop(), ch * ch_mult[i], temb))
                c = ch * ch_mult[i]
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(c))
            if i > 0:
                level.upsample = conv_holder(nn.Conv2d(c, c, 3, padding=1))
                res *= 2
            up.insert(0, level)
        self.up = nn.ModuleList(up)
        self.norm_out, self.conv_out = norm(c), nn.Conv2d(c, out_ch, 3, padding=1)

    def forward(self, x, t):
        half = self.ch // 2                     # sinusoidal features [sin, cos], frequencies 10000^(-i / (half - 1))
        angles = t.float()[:, None] * torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))[None]
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](torch.cat([angles.sin(), angles.cos()], 1).to(x.dtype))))
        hs = [self.conv_in(x)]
        for level in self.down:
            for j, block in enumerate(level.block):
                h = block(hs[-1], temb)
                hs.append(level.attn[j](h) if len(level.attn) else h)
            if hasattr(level, "downsample"):   # pad right and bottom by one, then a stride-2 conv without padding
                hs.append(level.downsample.conv(F.pad(hs[-1], (0, 1, 0, 1))))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hs[-1], temb)), temb)
        for level in reversed(self.up):
            for j, block in enumerate(level.block):
                h = block(torch.cat([h, hs.pop()], 1), temb)
                h = level.attn[j](h) if len(level.attn) else h
            if hasattr(level, "upsample"):
                h = level.upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def random_ddpm(seed, **kwargs):
    """A DDPMModel with every parameter drawn at random (norms' weights and biases included)."""
    torch.manual_seed(seed)
    model = DDPMModel(**dict(TINY, **kwargs))
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn_like(p) * (0.2 if p.dim() == 1 else 1 / math.sqrt(fan_in)))
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.add_(1.0)
    return model.eval()


def prefixed(state_dict):
    return {"module." + k: v for k, v in state_dict.items()}


@pytest.fixture(scope="module")
def ddim_list_file(tmp_path_factory):
    """DDIM's training format: [model (module.-prefixed), optimizer, epoch, step, ema], model and EMA different."""
    raw, ema = random_ddpm(0), random_ddpm(1)
    optimizer = torch.optim.Adam(raw.parameters(), lr=2e-4)
    raw(torch.randn(1, 3, 16, 16), torch.tensor([3])).square().mean().backward()
    optimizer.step()
    path = tmp_path_factory.mktemp("ddim") / "ckpt.pth"
    torch.save([prefixed(raw.state_dict()), optimizer.state_dict(), 7, 1234, prefixed(ema.state_dict())], path)
    return path, raw, ema


@pytest.mark.parametrize("weights", ["model", "ema"])
def test_ddim_list_checkpoint_gives_the_original_outputs(ddim_list_file, weights):
    path, raw, ema = ddim_list_file
    reference = raw if weights == "model" else ema
    unet = load_ddim_checkpoint(path, weights=weights, sample_size=16)
    assert isinstance(unet, UNet2DModel) and not unet.training
    assert count_params(unet) == count_params(reference)
    x, t = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 1, 500, 999])
    with torch.no_grad():
        want, got, other = reference(x, t), unet(x, t).sample, (ema if weights == "model" else raw)(x, t)
    print(f"max abs difference ({weights}): {(got - want).abs().max().item():.3g}")
    assert want.abs().mean() > 0.1 and (other - want).abs().max() > 0.1   # both sizeable and telling apart
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_plain_state_dict_without_prefix_loads(tmp_path):
    reference = random_ddpm(2, num_res_blocks=1, attn_resolutions=(16,))   # attention at the top level this time
    torch.save(reference.state_dict(), tmp_path / "plain.pt")
    unet = load_ddim_checkpoint(tmp_path / "plain.pt", weights="model", sample_size=16)
    assert unet.config.layers_per_block == 1 and unet.config.down_block_types == ("AttnDownBlock2D", "DownBlock2D")
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([0, 999])
    with torch.no_grad():
        torch.testing.assert_close(unet(x, t).sample, reference(x, t), atol=1e-5, rtol=0)


def test_bad_checkpoints_raise_one_line_load_errors(tmp_path):
    state = random_ddpm(3).state_dict()
    cases = {"missing": ({k: v for k, v in state.items() if k != "mid.attn_1.k.bias"}, "mid.attn_1.k.bias"),
             "extra": (dict(state, logvar=torch.zeros(1000)), "logvar"),
             "no_ema": ([prefixed(state), {}, 1, 2], "EMA"),
             "not_tensors": ({"epoch": 3, "name": "x"}, "neither a state dict"),
             "random_bytes": (None, "torch checkpoint")}
    for name, (obj, words) in cases.items():
        path = tmp_path / f"{name}.pth"
        if obj is None:
            path.write_bytes(torch.randn(1000).numpy().tobytes())
        else:
            torch.save(obj, path)
        with pytest.raises(LoadError) as error:
            load_ddim_checkpoint(path)
        assert words in str(error.value) and "\n" not in str(error.value), (name, str(error.value))


def test_celeba_config_has_the_papers_size_and_the_mapping_covers_it_exactly():
    with torch.device("meta"):
        unet = UNet2DModel(**DDIM_CELEBA64_CONFIG)
        original = DDPMModel(ch=128, ch_mult=(1, 2, 2, 2, 4), num_res_blocks=2, attn_resolutions=(16,), resolution=64)
    assert abs(count_params(unet) - 78.7e6) <= 78.7e3 and count_params(unet) == count_params(original)
    source = original.state_dict()
    converted = ddim_to_diffusers(source, DDIM_CELEBA64_CONFIG)
    target = unet.state_dict()
    assert len(converted) == len(source) and converted.keys() == target.keys()
    assert all(converted[k].shape == target[k].shape for k in target)
