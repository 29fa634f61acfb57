"""The Reg2RG / RadFM 3D ViT image encoder, re-implemented in plain torch (no package ships it).

Written from its documented semantics (../shared/reference/reference-semantics.md, section 3; the original
is zhi-xuan-chen/Reg2RG src/Model/vit_3d.py + position_encoding.py, copied from RadFM): the Feb-Aug 2023
vit-pytorch vit_3d with PreNorm wrappers and "dual patchnorm", a [B, C, H, W, D] input (depth last), and a
factorized learned 3D position embedding; no class token, no pooling, no head, no final norm. forward
returns (tokens, positions) as the original does.

The parameter names are the original's, so a RadFM / Reg2RG checkpoint loads with strict=True. Only torch
is needed: the einops patterns of the original are spelled out as reshape + permute, which is what einops
does with them, so the numbers are the same bit for bit.

Used by tools/export_weights.py (family "reg2rg") and by the fixture scripts in tests/fixtures/.
"""
import torch
import torch.nn as nn


class PositionEmbeddingLearned3d(nn.Module):
    """Three learned tables (rows, columns, depth slices), concatenated per token as [row | col | dep]."""

    def __init__(self, num_pos_feats, h_patch_num, w_patch_num, d_patch_num):
        super().__init__()
        self.h_patch_num, self.w_patch_num, self.d_patch_num = h_patch_num, w_patch_num, d_patch_num
        self.row_embed = nn.Embedding(h_patch_num, num_pos_feats)
        self.col_embed = nn.Embedding(w_patch_num, num_pos_feats)
        self.dep_embed = nn.Embedding(d_patch_num, num_pos_feats)

    def forward(self, B, h, w, d, x):
        # A smaller grid than the tables reads the last row of each stride group, as the original does.
        i = (torch.arange(h) + 1) * (self.h_patch_num // h) - 1
        j = (torch.arange(w) + 1) * (self.w_patch_num // w) - 1
        k = (torch.arange(d) + 1) * (self.d_patch_num // d) - 1
        x_emb = self.row_embed(i)[:, None, None].repeat(1, w, d, 1)
        y_emb = self.col_embed(j)[None, :, None].repeat(h, 1, d, 1)
        z_emb = self.dep_embed(k)[None, None, :].repeat(h, w, 1, 1)
        pos = torch.cat([x_emb, y_emb, z_emb], dim=-1)[None].repeat(B, 1, 1, 1, 1)
        return pos.reshape(B, h * w * d, pos.shape[-1])  # 'b h w d c -> b (h w d) c'


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x):
        return self.fn(self.norm(x))


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def forward(self, x):
        b, n, _ = x.shape
        # 'b n (h d) -> b h n d' for each of q, k, v
        q, k, v = (t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = (torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = torch.matmul(attn, v).permute(0, 2, 1, 3)  # 'b h n d -> b n (h d)'
        return self.to_out(out.reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim),
                                 nn.Dropout(0.0))

    def forward(self, x):
        return self.net(x)


def _pair(t):
    return tuple(t) if isinstance(t, (tuple, list)) else (t, t)


class Reg2rgViT(nn.Module):
    """ViT(*, image_size, image_patch_size, frames, frame_patch_size, dim, depth, heads, mlp_dim, pool='cls',
    channels=3, dim_head=64, dropout=0., emb_dropout=0.): the original's constructor. As there, image_size
    and image_patch_size may be (height, width) pairs, and pool is checked but unused; dropout has no
    effect at inference and is not modelled."""

    def __init__(self, *, image_size, image_patch_size, frames, frame_patch_size, dim, depth, heads, mlp_dim,
                 pool="cls", channels=3, dim_head=64, dropout=0.0, emb_dropout=0.0):
        super().__init__()
        (ih, iw), (ph, pw) = _pair(image_size), _pair(image_patch_size)
        if ih % ph or iw % pw or frames % frame_patch_size:
            raise ValueError(f"image size {(ih, iw)} and frames {frames} must be multiples of the patch size "
                             f"{(ph, pw)} and frame_patch_size {frame_patch_size}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool type must be either cls (cls token) or mean (mean pooling), got {pool!r}")
        self.image_size, self.frames, self.channels = (ih, iw), frames, channels
        self.patch_size, self.pf = (ph, pw), frame_patch_size
        patch_dim = channels * ph * pw * frame_patch_size
        self.to_patch_embedding = nn.Sequential(
            nn.Identity(), nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim))
        self.pos_embedding = PositionEmbeddingLearned3d(dim // 3, ih // ph, iw // pw, frames // frame_patch_size)
        self.transformer = nn.Module()
        self.transformer.layers = nn.ModuleList([nn.ModuleList([
            PreNorm(dim, Attention(dim, heads, dim_head)),
            PreNorm(dim, FeedForward(dim, mlp_dim))]) for _ in range(depth)])

    def patchify(self, video):
        """'b c (h p1) (w p2) (f pf) -> b (h w f) (p1 p2 pf c)'"""
        B, C, H, W, D = video.shape
        (p1, p2), pf = self.patch_size, self.pf
        x = video.reshape(B, C, H // p1, p1, W // p2, p2, D // pf, pf)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)
        return x.reshape(B, (H // p1) * (W // p2) * (D // pf), p1 * p2 * pf * C)

    def forward(self, video):
        B, C, H, W, D = video.shape
        x = self.to_patch_embedding(self.patchify(video))
        (p1, p2), pf = self.patch_size, self.pf
        pos = self.pos_embedding(B, H // p1, W // p2, D // pf, x).to(x.dtype)
        x = x + pos
        for attn, ff in self.transformer.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x, pos
