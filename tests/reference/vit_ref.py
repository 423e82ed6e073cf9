"""Independent PyTorch reference of catlip's model and optimiser (docs/architecture.md, "The model").

A timm-style VisionTransformer written in plain torch, with submodule names chosen so that
state_dict() keys are timm's (`blocks.3.attn.qkv.weight`, ...), the CatLIP loss
(BCEWithLogits summed over classes and batch, divided by the batch size), and the training
loop catlip runs: AdamW with no decay on biases / LayerNorm / pos_embed / cls_token, linear
warmup then cosine decay, global grad-norm clipping, EMA of the weights.

Used by check_reference.py (float64, against catlip_refdump; float32 under bf16 autocast,
against catlip's train.precision bf16) and bench/step_vs_pytorch.py (float32, for speed).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERNORM_EPS = 1e-6

# (dim, depth, heads) of the presets in docs/architecture.md; mlp hidden is 4 * dim.
PRESETS = {
    "vit_tiny": (192, 12, 3),
    "vit_small": (384, 12, 6),
    "vit_base": (768, 12, 12),
    "vit_large": (1024, 24, 16),
    "vit_huge": (1280, 32, 16),
}


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, img):                       # (B, 3, S, S)
        x = self.proj(img)                        # (B, C, S/P, S/P)
        return x.flatten(2).transpose(1, 2)       # (B, N, C), patches in row-major order


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0, "dim must be a multiple of heads"
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):                         # (B, T, C)
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]          # each (B, H, T, hd)
        att = (q @ k.transpose(-2, -1)) * self.scale   # (B, H, T, T)
        att = att.softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)  # heads concatenated
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))      # exact erf GELU (approximate='none')


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, dim, depth, heads, mlp_hidden, num_classes):
        super().__init__()
        assert image_size % patch_size == 0, "image_size must be a multiple of patch_size"
        n_patches = (image_size // patch_size) ** 2
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n_patches, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.head = nn.Linear(dim, num_classes)
        self.init_weights()

    def init_weights(self):
        # As docs/architecture.md: trunc normal std 0.02 (at +-2 std) for weights and embeddings,
        # zero biases, LayerNorm ones/zeros. Used only when no catlip weights are loaded.
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith(".bias"):
                    p.zero_()
                elif _is_layernorm_weight(name):
                    p.fill_(1.0)
                else:
                    nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04)

    def forward(self, img):                       # (B, 3, S, S) -> (B, V)
        x = self.patch_embed(img)                 # (B, N, C)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, T, C)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.head(x[:, 0])                 # CLS pooling


def build_model(cfg, dtype=torch.float64):
    """cfg: the "model" object of catlip_refdump's config.json."""
    m = VisionTransformer(int(cfg["image_size"]), int(cfg["patch_size"]), int(cfg["dim"]),
                          int(cfg["depth"]), int(cfg["heads"]), int(cfg["mlp_hidden"]),
                          int(cfg["num_classes"]))
    return m.to(dtype)


def model_config(name, image_size, patch_size, num_classes, dim=None, depth=None, heads=None):
    pd, pdep, ph = PRESETS.get(name, (None, None, None))
    dim, depth, heads = dim or pd, depth or pdep, heads or ph
    if dim is None or depth is None or heads is None:
        raise ValueError(f"unknown model '{name}' and no dim/depth/heads given")
    return {"dim": dim, "depth": depth, "heads": heads, "mlp_hidden": 4 * dim,
            "image_size": image_size, "patch_size": patch_size, "num_classes": num_classes}


def load_weights(model, arrays):
    """Copies {timm name: numpy array} into the model; every parameter must be present."""
    state = model.state_dict()
    missing = [k for k in state if k not in arrays]
    extra = [k for k in arrays if k not in state]
    if missing or extra:
        raise KeyError(f"weights do not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
    with torch.no_grad():
        for k, v in state.items():
            src = torch.from_numpy(arrays[k]).to(v.dtype)
            if tuple(src.shape) != tuple(v.shape):
                raise ValueError(f"{k}: shape {tuple(src.shape)}, model wants {tuple(v.shape)}")
            v.copy_(src)


def forward_logits(model, images, autocast=False):
    """The model's logits; with autocast, the forward runs under torch.autocast("cpu",
    bfloat16) — what catlip's train.precision bf16 follows — and the logits come back as
    float32, so the loss is float32 as in catlip."""
    if not autocast:
        return model(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    return logits.float()


def catlip_loss(logits, targets):
    """BCEWithLogits summed over classes and batch, divided by the batch size (CoreNet batch_mean)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / logits.shape[0]


def _is_layernorm_weight(name):
    return name.endswith(("norm1.weight", "norm2.weight")) or name == "norm.weight"


def no_weight_decay(name):
    return name.endswith(".bias") or _is_layernorm_weight(name) or name in ("pos_embed", "cls_token")


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if no_weight_decay(name) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_at(t, optim, total_steps):
    """Learning rate before step t (0-based): linear warmup, then cosine to min_lr."""
    lr, min_lr = float(optim["lr"]), float(optim["min_lr"])
    warm, warm_init = int(optim["warmup_steps"]), float(optim["warmup_init_lr"])
    if t < warm:
        return warm_init + (lr - warm_init) * t / warm
    span = total_steps - warm
    progress = (t - warm) / span if span > 0 else 0.0
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """One replica's training step, exactly as catlip: zero grads, forward, loss, backward,
    clip (recording the pre-clip global norm), AdamW step, EMA update."""

    def __init__(self, model, optim, total_steps, autocast=False):
        self.model = model
        self.autocast = autocast
        self.optim_cfg = optim
        self.total_steps = total_steps
        b1, b2 = (float(b) for b in optim["betas"])
        self.opt = torch.optim.AdamW(param_groups(model, float(optim["weight_decay"])),
                                     lr=float(optim["lr"]), betas=(b1, b2), eps=float(optim["eps"]))
        self.grad_clip = float(optim["grad_clip"])
        self.ema_m = float(optim["ema"])
        self.params = [p for _, p in model.named_parameters()]
        self.ema = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.t = 0

    def step(self, images, targets):
        """Returns (loss before the update, lr used, pre-clip grad norm) as Python floats."""
        lr = lr_at(self.t, self.optim_cfg, self.total_steps)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad(set_to_none=False)
        loss = catlip_loss(forward_logits(self.model, images, self.autocast), targets)
        loss.backward()
        if self.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in self.params]))
        self.opt.step()
        with torch.no_grad():
            m = self.ema_m
            for n, p in self.model.named_parameters():
                e = self.ema[n]
                e.mul_(1.0 - m).add_(p, alpha=m)
        self.t += 1
        return float(loss), lr, float(norm)


def gradients_at(model, images, targets, autocast=False):
    """(logits, loss, {name: grad}) at the model's current weights, for one batch."""
    model.zero_grad(set_to_none=True)
    logits = forward_logits(model, images, autocast)
    loss = catlip_loss(logits, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return logits.detach(), float(loss), grads


def train(model, images, targets, optim, steps, autocast=False):
    """Runs `steps` steps on the same batch. Returns dict with losses, lrs, grad_norms lists and
    ema / param {name: tensor}."""
    tr = Trainer(model, optim, steps, autocast)
    losses, lrs, norms = [], [], []
    for _ in range(steps):
        loss, lr, norm = tr.step(images, targets)
        losses.append(loss)
        lrs.append(lr)
        norms.append(norm)
    return {"losses": losses, "lrs": lrs, "grad_norms": norms,
            "ema": {n: e.detach().clone() for n, e in tr.ema.items()},
            "param": {n: p.detach().clone() for n, p in model.named_parameters()}}
