"""The tiny host family: a small dual-stream-sum VLM for the synthetic benchmark (issue 7).

``TinyHost`` has up to three encoders, chosen by its :class:`~hosts.base.HostSpec` flags (paper Table 10):

* text encoder: word embeddings + positions, pre-norm transformer layers; pooled ``[B, d]`` = masked mean of
  the final token states (``text_pool="mean"``; ``"cls"`` = the ``[CLS]`` state);
* video encoder: a motion stem (``stem="motion_conv"``: each frame and its difference to the previous frame,
  amplified by :data:`MOTION_GAIN`, through a 3x3 convolution + GroupNorm + GELU, then 8x8 patches), a
  per-frame ``[CLS]`` token, each layer = spatial attention inside a frame followed by temporal attention of
  every token position across the frames (``temporal="tokens"``, TimeSformer's divided attention); pooled
  per frame ``[B, T, d]`` = channel-wise max over the frame's
  tokens (``video_pool="max"``; ``"mean"`` / ``"cls"`` possible). Mean or ``[CLS]`` pooling of these clips
  (small objects on a textured background) gives near-identical embeddings at initialisation (cosine ~0.99),
  which left InfoNCE on its ``ln B`` plateau for the whole short pre-training of the ``small`` preset;
* cross-modal encoder: joint ``[CLS]`` + text tokens + per-frame video tokens (frame ``[CLS]`` and 2x2
  average-pooled patches of the video encoder's output) with modality embeddings; pooled per frame at the
  frame ``[CLS]`` positions. In ``tiny_cross`` (All-in-one-like) the cross encoder is the *only* encoder and
  reads word embeddings and 2x2-pooled patch embeddings directly.

Motion (issue 10, measured with supervised training on ``synth_action``, 1000 clips, 8 epochs, 200 test clips,
chance 5.6 %): the earlier RGB patch stem with temporal attention over the frame ``[CLS]`` tokens only
(``stem="patch", temporal="cls"``, kept as options) stays near chance (3-10 % test over 15 epochs, ending at 3 %,
while it memorises the training set);
a tubelet stem (``"tubelet"``, Conv3d over frames t-1, t) reaches 10 %; the frame-difference stems reach 36 %
(``"motion"``, patch projection) and 56 % (``"motion_conv"``). The moving object's pixels change by a few
percent of a frame's energy, so without the explicit difference the encoder has to discover it from 1000 clips.

Position embeddings (text positions, frame times) start at N(0, 0.02) as in BERT / ViT, so content, not
position, dominates the tokens at initialisation.

Own losses (Eq 42): ``vla`` = symmetric InfoNCE of text and video embeddings (CLIP4Clip's loss) and, when a
cross encoder exists, video-text matching (binary, in-batch shifted negatives), averaged (at chance both
give ``0.5 * (ln B + ln 2)``, i.e. ``ln 4`` for ``B = 8``); ``mlm`` = masked word prediction (15 %), from the
cross encoder when present, else from the text encoder; ``cap`` (``caption_pretrain=True``, not an Eq 42
term, so Finsta's post-training gives it weight 0) = teacher-forced captioning of the batch texts, so that
pre-training on ``synth_pairs`` also trains the caption decoder.
A GRU caption decoder with dot-product attention over a memory (every final video token, or cross states
for prompted generation) gives ``caption_loss`` / ``generate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, HostSpec, Preprocess, TokenStates
from hosts.pooling import l2norm, masked_mean, symmetric_infonce, video_token_maps
from hosts.tiny.tokenizer import CLS, MASK, PAD, SEP, WordTokenizer

MOTION_GAIN = 4.0  # scale of the frame-difference channels of the motion stems (a moving edge ~ a static one)


@dataclass(frozen=True)
class TinyConfig:
    """Widths and geometry. Defaults: about 0.4M parameters for ``tiny`` at ``dim=64``."""

    dim: int = 64
    heads: int = 4
    layers: int = 2
    mlp_ratio: int = 2
    patch: int = 8
    image_size: int = 32
    num_frames: int = 8
    max_frames: int = 64
    max_words: int = 128
    hash_buckets: int = 64
    mlm_prob: float = 0.15
    max_caption: int = 40
    text_pool: str = "mean"
    video_pool: str = "max"
    caption_pretrain: bool = True
    stem: str = "motion_conv"
    temporal: str = "tokens"

    def __post_init__(self) -> None:
        for key, ok in (("text_pool", ("mean", "cls")), ("video_pool", ("max", "mean", "cls")),
                        ("stem", ("patch", "tubelet", "conv", "motion", "motion_conv")),
                        ("temporal", ("cls", "tokens"))):
            if getattr(self, key) not in ok:
                raise ValueError(f"TinyConfig.{key} must be one of {ok}, got {getattr(self, key)!r}")


def _block(cfg: TinyConfig) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.dim * cfg.mlp_ratio, dropout=0.0, activation="gelu",
                                      batch_first=True, norm_first=True)


class TextEncoder(nn.Module):
    def __init__(self, cfg: TinyConfig, vocab: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, cfg.dim)
        self.pos = nn.Embedding(cfg.max_words, cfg.dim)
        nn.init.normal_(self.pos.weight, std=0.02)  # BERT / ViT-style small position embeddings
        self.layers = nn.ModuleList([_block(cfg) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(cfg.dim)

    def embed(self, ids: Tensor) -> Tensor:
        return self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))[None]

    def forward(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, L]`` ids -> (first-layer states, final states), both ``[B, L, d]``."""
        x = self.embed(ids)
        first = x
        for k, layer in enumerate(self.layers):
            x = layer(x, src_key_padding_mask=~mask)
            if k == 0:
                first = x
        return first, self.norm(x)


class VideoEncoder(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        g = cfg.image_size // cfg.patch
        self.grid = (g, g)
        self.stem = cfg.stem
        if cfg.stem == "tubelet":  # each token sees its patch in frames t-1 and t (motion at the first layer)
            self.patch = nn.Conv3d(3, cfg.dim, (2, cfg.patch, cfg.patch), (1, cfg.patch, cfg.patch))
        elif cfg.stem == "conv":  # 3x3 convolution over frames t-1 and t, then the patch projection
            self.patch = nn.Sequential(nn.Conv3d(3, cfg.dim // 2, (2, 3, 3), padding=(0, 1, 1)), nn.GELU(),
                                       nn.Conv3d(cfg.dim // 2, cfg.dim, (1, cfg.patch, cfg.patch),
                                                 (1, cfg.patch, cfg.patch)))
        elif cfg.stem == "motion":  # frame and amplified frame difference, one patch projection
            self.patch = nn.Conv2d(6, cfg.dim, cfg.patch, cfg.patch)
        elif cfg.stem == "motion_conv":
            self.patch = nn.Sequential(nn.Conv2d(6, cfg.dim // 2, 3, padding=1), nn.GroupNorm(4, cfg.dim // 2),
                                       nn.GELU(), nn.Conv2d(cfg.dim // 2, cfg.dim, cfg.patch, cfg.patch))
        else:
            self.patch = nn.Conv2d(3, cfg.dim, cfg.patch, cfg.patch)
        self.temporal_tokens = cfg.temporal == "tokens"
        self.space_pos = nn.Parameter(torch.randn(1, 1 + g * g, cfg.dim) * 0.02)
        self.time_pos = nn.Embedding(cfg.max_frames, cfg.dim)
        nn.init.normal_(self.time_pos.weight, std=0.02)  # small, so frame content dominates the tokens at init
        self.frame_cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.spatial = nn.ModuleList([_block(cfg) for _ in range(cfg.layers)])
        self.temporal = nn.ModuleList([_block(cfg) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(cfg.dim)

    def embed(self, video: Tensor) -> Tensor:
        """``[B, T, 3, H, W]`` -> tokens ``[B, T, 1 + P, d]`` (frame ``[CLS]`` first, patches row-major)."""
        b, t = video.shape[:2]
        if t > self.time_pos.num_embeddings:
            raise ValueError(f"tiny host: {t} frames exceed max_frames={self.time_pos.num_embeddings}")
        if self.stem in ("tubelet", "conv"):  # [B, 3, T, H, W], first frame repeated so frame 0 sees no motion
            v = video.transpose(1, 2)
            x = self.patch(torch.cat([v[:, :, :1], v], 2)).transpose(1, 2).flatten(0, 1)  # [BT, d, h, w]
            x = x.flatten(2).transpose(1, 2)  # [BT, P, d]
        elif self.stem.startswith("motion"):
            diff = torch.cat([torch.zeros_like(video[:, :1]), video[:, 1:] - video[:, :-1]], 1)
            x = torch.cat([video, MOTION_GAIN * diff], 2)  # [B, T, 6, H, W]
            x = self.patch(x.flatten(0, 1)).flatten(2).transpose(1, 2)  # [BT, P, d]
        else:
            x = self.patch(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # [BT, P, d]
        if x.shape[1] != self.space_pos.shape[1] - 1:
            raise ValueError(f"tiny host: frames of {tuple(video.shape[-2:])} px give {x.shape[1]} patches, "
                             f"built for {self.space_pos.shape[1] - 1} (image_size in the host config)")
        x = torch.cat([self.frame_cls.expand(x.shape[0], -1, -1), x], 1) + self.space_pos
        x = x.view(b, t, *x.shape[1:]) + self.time_pos(torch.arange(t, device=video.device))[None, :, None]
        return x

    def layer(self, k: int, x: Tensor) -> Tensor:
        b, t, n, d = x.shape
        x = self.spatial[k](x.reshape(b * t, n, d)).view(b, t, n, d)
        if self.temporal_tokens:  # divided attention: every token position attends across the frames
            return self.temporal[k](x.transpose(1, 2).reshape(b * n, t, d)).reshape(b, n, t, d).transpose(1, 2)
        cls = self.temporal[k](x[:, :, 0])  # temporal attention over the frame tokens
        return torch.cat([cls[:, :, None], x[:, :, 1:]], 2)

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """-> (first-layer tokens, final tokens), both ``[B, T, 1 + P, d]``."""
        x = self.embed(video)
        first = x
        for k in range(len(self.spatial)):
            x = self.layer(k, x)
            if k == 0:
                first = x
        return first, self.norm(x)


class CrossEncoder(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.modality = nn.Embedding(3, cfg.dim)  # 0 joint CLS, 1 text, 2 video
        self.layers = nn.ModuleList([_block(cfg) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, text: Tensor | None, text_mask: Tensor | None, video: Tensor | None) -> tuple[Tensor, Tensor,
                                                                                                     Tensor]:
        """``text [B, L, d]`` (+ mask), ``video [B, T, n, d]`` -> (first, final ``[B, 1 + L + T*n, d]``, mask)."""
        ref = text if text is not None else video
        b = ref.shape[0]
        parts = [self.cls.expand(b, -1, -1) + self.modality.weight[0]]
        masks = [torch.ones(b, 1, dtype=torch.bool, device=ref.device)]
        if text is not None:
            parts.append(text + self.modality.weight[1])
            masks.append(text_mask)
        if video is not None:
            v = video.flatten(1, 2)
            parts.append(v + self.modality.weight[2])
            masks.append(torch.ones(b, v.shape[1], dtype=torch.bool, device=ref.device))
        x, mask = torch.cat(parts, 1), torch.cat(masks, 1)
        first = x
        for k, layer in enumerate(self.layers):
            x = layer(x, src_key_padding_mask=~mask)
            if k == 0:
                first = x
        return first, self.norm(x), mask


class CaptionDecoder(nn.Module):
    """GRU decoder with dot-product attention over a memory ``[B, M, d]`` (teacher forcing is parallel)."""

    def __init__(self, cfg: TinyConfig, vocab: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, cfg.dim)
        self.init = nn.Linear(cfg.dim, cfg.dim)
        self.gru = nn.GRU(cfg.dim, cfg.dim, batch_first=True)
        self.out = nn.Linear(2 * cfg.dim, vocab)

    def _logits(self, h: Tensor, memory: Tensor, mem_mask: Tensor) -> Tensor:
        att = (h @ memory.transpose(1, 2)) / h.shape[-1] ** 0.5  # [B, S, M]
        att = att.masked_fill(~mem_mask[:, None], float("-inf")).softmax(-1)
        return self.out(torch.cat([h, att @ memory], -1))

    def _h0(self, memory: Tensor, mem_mask: Tensor) -> Tensor:
        m = mem_mask[..., None].to(memory.dtype)
        return torch.tanh(self.init((memory * m).sum(1) / m.sum(1).clamp_min(1)))[None]

    def loss(self, memory: Tensor, mem_mask: Tensor, targets: Tensor) -> Tensor:
        """``targets [B, S]`` = ``[CLS] w1 .. wn [SEP] [PAD]...``: predict token ``s+1`` from ``<= s``."""
        h, _ = self.gru(self.emb(targets[:, :-1]), self._h0(memory, mem_mask).contiguous())
        logits = self._logits(h, memory, mem_mask)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[:, 1:].reshape(-1), ignore_index=PAD)

    @torch.no_grad()
    def greedy(self, memory: Tensor, mem_mask: Tensor, steps: int) -> list[list[int]]:
        b = memory.shape[0]
        tok = torch.full((b, 1), CLS, dtype=torch.long, device=memory.device)
        h = self._h0(memory, mem_mask).contiguous()
        out = []
        for _ in range(steps):
            o, h = self.gru(self.emb(tok), h)
            logits = self._logits(o, memory, mem_mask)[:, -1]
            logits[:, [PAD, CLS, MASK]] = float("-inf")
            tok = logits.argmax(-1, keepdim=True)
            out.append(tok)
        return torch.cat(out, 1).tolist()


class TinyHost(Host):
    """Tiny dual-stream-sum VLM; encoders present follow ``spec.has_text/has_video/has_cross``."""

    def __init__(self, spec: HostSpec, cfg: TinyConfig | None = None) -> None:
        cfg = cfg or TinyConfig()
        super().__init__(spec, Preprocess(num_frames=cfg.num_frames, resolution=cfg.image_size,
                                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))
        self.cfg = cfg
        self.tokenizer = WordTokenizer(cfg.max_words, cfg.hash_buckets)
        v, d = self.tokenizer.vocab_size, cfg.dim
        self.only_cross = spec.has_cross and not (spec.has_text or spec.has_video)
        self.text = TextEncoder(cfg, v) if (spec.has_text or self.only_cross) else None
        self.video = VideoEncoder(cfg) if (spec.has_video or self.only_cross) else None
        self.cross = CrossEncoder(cfg) if spec.has_cross else None
        self.text_proj, self.video_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.joint_proj = nn.Linear(d, d) if self.cross is not None else nn.Linear(3 * d, d)
        self.vtm_head = nn.Linear(d, 1) if self.cross is not None else None
        self.mlm_head = nn.Linear(d, v)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), as CLIP
        self.decoder = CaptionDecoder(cfg, v)
        if self.only_cross:  # All-in-one-like: the embeddings feed the cross encoder; no text/video layers
            self.text.layers, self.video.spatial, self.video.temporal = nn.ModuleList(), nn.ModuleList(), \
                nn.ModuleList()

    # -- widths ----------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.cfg.dim

    def encoder_widths(self) -> dict[str, int]:
        s = self.spec
        return {k: self.cfg.dim for k, on in (("text", s.has_text), ("video", s.has_video), ("cross", s.has_cross))
                if on}

    first_layer_widths = encoder_widths

    # -- building blocks -------------------------------------------------------------------------------
    def _tok(self, texts: list[str]):
        return self.tokenizer(list(texts)).to(self.logit_scale.device)

    def _frames(self, video: Tensor, frame_times: Tensor | None) -> Tensor:
        if frame_times is not None:
            return frame_times.float()
        t = video.shape[1]
        return torch.arange(t, device=video.device, dtype=torch.float32).expand(video.shape[0], t)

    def _video_for_cross(self, v_final: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Frame ``[CLS]`` + 2x2 average-pooled patches per frame: ``[B, T, 1 + P/4, d]`` and the pooled grid
        (the video encoder's output, or in ``tiny_cross`` the patch embeddings)."""
        b, t, n, d = v_final.shape
        g = self.video.grid
        p = v_final[:, :, 1:].reshape(b * t, g[0], g[1], d).permute(0, 3, 1, 2)
        p = F.avg_pool2d(p, 2).flatten(2).transpose(1, 2).reshape(b, t, -1, d)
        return torch.cat([v_final[:, :, :1], p], 2), (g[0] // 2, g[1] // 2)

    def _cross_inputs(self, ids: Tensor | None, mask: Tensor | None, video: Tensor | None):
        """Text / video token sequences fed to the cross encoder (and the grid of the video tokens)."""
        if self.only_cross:
            t = self.text.embed(ids) if ids is not None else None
            if video is None:
                return t, None, None
            v, grid = self._video_for_cross(self.video.embed(video))
            return t, v, grid
        t = self.text(ids, mask)[1] if ids is not None else None
        if video is None:
            return t, None, None
        v, grid = self._video_for_cross(self.video(video)[1])
        return t, v, grid

    def _cross_pool(self, final: Tensor, n_text: int, t: int, per_frame: int) -> Tensor:
        """Cross outputs at the frame ``[CLS]`` positions: ``[B, T, d]``."""
        idx = 1 + n_text + torch.arange(t, device=final.device) * per_frame
        return final[:, idx]

    def _text_pool(self, final: Tensor, mask: Tensor) -> Tensor:
        """Instance-level text output ``[B, d]`` from final states ``[B, L, d]``: masked mean over the tokens
        (``text_pool="mean"``) or the ``[CLS]`` state (``"cls"``)."""
        return masked_mean(final, mask) if self.cfg.text_pool == "mean" else final[:, 0]

    def _frame_pool(self, v_final: Tensor) -> Tensor:
        """Per-frame output ``[B, T, d]`` from video tokens ``[B, T, n, d]``: max over the frame's tokens per
        channel (``video_pool="max"``: small objects on a large background survive the pooling), their mean
        (``"mean"``) or the frame ``[CLS]`` (``"cls"``)."""
        if self.cfg.video_pool == "max":
            return v_final.amax(2)
        return v_final.mean(2) if self.cfg.video_pool == "mean" else v_final[:, :, 0]

    # -- Finsta post-training --------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        video, times = batch.video, self._frames(batch.video, batch.frame_times)
        b, t = video.shape[:2]
        tok = self._tok(batch.texts)
        out = HostOutputs()
        t_emb = v_emb = None
        t_final = v_final = None
        if self.spec.has_text:
            first, t_final = self.text(tok.input_ids, tok.attention_mask)
            pooled = self._text_pool(t_final, tok.attention_mask)
            out.text = EncoderOutput(TokenStates(first, tok.attention_mask, tok.char_spans), pooled)
            t_emb = l2norm(self.text_proj(pooled))
        if self.spec.has_video:
            first, v_final = self.video(video)
            fi, rc = video_token_maps(b, t, self.video.grid, 1, video.device)
            states = first.flatten(1, 2)
            ones = torch.ones(states.shape[:2], dtype=torch.bool, device=video.device)
            frames = self._frame_pool(v_final)
            out.video = EncoderOutput(TokenStates(states, ones, None, fi, rc, self.video.grid), frames, times)
            v_emb = l2norm(self.video_proj(frames.mean(1)))
        if self.cross is not None:
            if self.only_cross:
                ct, (cv, grid) = self.text.embed(tok.input_ids), self._video_for_cross(self.video.embed(video))
            else:
                (cv, grid), ct = self._video_for_cross(v_final), t_final
            first, final, mask = self.cross(ct, tok.attention_mask, cv)
            n_text, per_frame = ct.shape[1], cv.shape[2]
            fi, rc = video_token_maps(b, t, grid, 1, video.device)
            lead = torch.full((b, 1 + n_text), -1, dtype=torch.long, device=video.device)
            spans = torch.cat([torch.full((b, 1, 2), -1, dtype=torch.long, device=video.device), tok.char_spans,
                               torch.full((b, t * per_frame, 2), -1, dtype=torch.long, device=video.device)], 1)
            states = TokenStates(first, mask, spans, torch.cat([lead, fi], 1),
                                 torch.cat([lead[..., None].expand(-1, -1, 2), rc], 1), grid)
            out.cross = EncoderOutput(states, self._cross_pool(final, n_text, t, per_frame), times)
            if with_losses:
                out.losses.update(self._cross_losses(tok, ct, cv, final, t_emb, v_emb, v_final))
        elif with_losses:
            out.losses["vla"] = symmetric_infonce(t_emb, v_emb, self.logit_scale.exp().clamp(max=100))
            out.losses["mlm"] = self._mlm(tok.input_ids, tok.attention_mask, None)
            if self.cfg.caption_pretrain:
                out.losses["cap"] = self._caption_loss(v_final.flatten(1, 2), None, tok.input_ids)
        return out

    def _vtm(self, ct: Tensor, mask: Tensor, cv: Tensor, pos_f: Tensor) -> Tensor:
        """Video-text matching: the matched pass ``pos_f`` and in-batch shifted negatives (BCE on the joint
        ``[CLS]``)."""
        b = ct.shape[0]
        neg = torch.roll(torch.arange(b, device=ct.device), 1)
        _, neg_f, _ = self.cross(ct[neg], mask[neg], cv)
        logits = self.vtm_head(torch.cat([pos_f[:, 0], neg_f[:, 0]])).squeeze(-1)
        labels = torch.cat([torch.ones(b), torch.zeros(b)]).to(logits)
        if b < 2:
            logits, labels = logits[:b], labels[:b]
        return F.binary_cross_entropy_with_logits(logits, labels)

    def _cross_losses(self, tok, ct: Tensor, cv: Tensor, final: Tensor, t_emb: Tensor | None,
                      v_emb: Tensor | None, v_final: Tensor | None) -> dict[str, Tensor]:
        """``vla`` (ITC + VTM, averaged), ``mlm`` and, with ``caption_pretrain``, ``cap`` (teacher-forced
        captioning of the batch texts from the video memory of :meth:`caption_loss`)."""
        if t_emb is None:  # cross-only: unimodal passes through the shared encoder give the embeddings
            t_emb = self.encode_text(None, tok)
            memory = self.cross(None, None, cv)[1]  # the video-only pass of encode_video, kept for captioning
            v_emb = l2norm(self.video_proj(self._frame_pool(memory[:, None])[:, 0]))
        else:
            memory = v_final.flatten(1, 2)
        vtm = self._vtm(ct, tok.attention_mask, cv, final)
        itc = symmetric_infonce(t_emb, v_emb, self.logit_scale.exp().clamp(max=100))
        losses = {"vla": 0.5 * (itc + vtm), "mlm": self._mlm(tok.input_ids, tok.attention_mask, cv)}
        if self.cfg.caption_pretrain:
            losses["cap"] = self._caption_loss(memory, None, tok.input_ids)
        return losses

    def _mlm(self, ids: Tensor, mask: Tensor, cv: Tensor | None) -> Tensor:
        """Mask 15 % of the words (at least one per row) and predict them (from the cross encoder if any)."""
        words = mask & (ids != CLS) & (ids != SEP)
        pick = (torch.rand(ids.shape, device=ids.device) < self.cfg.mlm_prob) & words
        first_word = words & (words.cumsum(1) == 1)
        pick |= first_word & ~pick.any(1, keepdim=True)
        masked = ids.masked_fill(pick, MASK)
        if self.cross is not None:  # cv: the (unmasked) video tokens already fed to the cross encoder
            ct = self.text.embed(masked) if self.only_cross else self.text(masked, mask)[1]
            states = self.cross(ct, mask, cv)[1][:, 1:1 + ids.shape[1]]
        else:
            states = self.text(masked, mask)[1]
        return F.cross_entropy(self.mlm_head(states[pick]), ids[pick])

    # -- capabilities ----------------------------------------------------------------------------------
    def encode_text(self, texts: list[str] | None, tok=None) -> Tensor:
        tok = tok if tok is not None else self._tok(texts)
        if self.only_cross:
            _, final, mask = self.cross(self.text.embed(tok.input_ids), tok.attention_mask, None)
            return l2norm(self.text_proj(self._text_pool(final, mask)))
        return l2norm(self.text_proj(self._text_pool(self.text(tok.input_ids, tok.attention_mask)[1],
                                                     tok.attention_mask)))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        if self.only_cross:
            final = self.cross(None, None, self._cross_inputs(None, None, video)[1])[1]
            return l2norm(self.video_proj(self._frame_pool(final[:, None])[:, 0]))
        return l2norm(self.video_proj(self._frame_pool(self.video(video)[1]).mean(1)))

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        if self.cross is None:
            t, v = self.encode_text(texts), self.encode_video(video)
            return self.joint_proj(torch.cat([t, v, t * v], -1))
        tok = self._tok(texts)
        ct, cv, _ = self._cross_inputs(tok.input_ids, tok.attention_mask, video)
        return self.joint_proj(self.cross(ct, tok.attention_mask, cv)[1][:, 0])

    def _memory(self, video: Tensor, prompts: list[str] | None) -> tuple[Tensor, Tensor]:
        """Decoder memory ``[B, M, d]`` and mask: every final video token (captions: frame ``[CLS]`` and patch
        tokens of all frames, so the decoder can attend to the objects) or cross / concatenated states
        (prompts)."""
        if prompts is None or self.cross is None and not self.spec.has_text:
            if self.only_cross:
                final = self.cross(None, None, self._cross_inputs(None, None, video)[1])[1]
            else:
                final = self.video(video)[1].flatten(1, 2)
        elif self.cross is not None:
            tok = self._tok(prompts)
            ct, cv, _ = self._cross_inputs(tok.input_ids, tok.attention_mask, video)
            final, mask = self.cross(ct, tok.attention_mask, cv)[1:]
            return final, mask
        else:
            tok = self._tok(prompts)
            txt = self.text(tok.input_ids, tok.attention_mask)[1]
            vid = self.video(video)[1].flatten(1, 2)
            m = torch.cat([tok.attention_mask, torch.ones(vid.shape[:2], dtype=torch.bool, device=vid.device)], 1)
            return torch.cat([txt, vid], 1), m
        return final, torch.ones(final.shape[:2], dtype=torch.bool, device=final.device)

    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None,
                     prompts: list[str] | None = None) -> Tensor:
        memory, mask = self._memory(video, prompts)
        return self._caption_loss(memory, mask, self._tok(texts).input_ids)

    def _caption_loss(self, memory: Tensor, mask: Tensor | None, ids: Tensor) -> Tensor:
        """Teacher-forced decoder loss of tokenised captions ``ids [B, S]`` (``[CLS] w.. [SEP] [PAD]..``,
        cut to ``max_caption``) on ``memory [B, M, d]`` (``mask`` None = all valid)."""
        if mask is None:
            mask = torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)
        return self.decoder.loss(memory, mask, ids[:, : self.cfg.max_caption])

    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        memory, mask = self._memory(video, prompts)
        return [self.tokenizer.decode(ids) for ids in self.decoder.greedy(memory, mask, max_new_tokens)]

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """``[B, K]`` scores, ``K`` = the most options of any question (questions with fewer options are padded
        with ``-inf``): VTM logit of (video, question + option) through the cross encoder, or the scaled cosine
        similarity of ``encode_text(question + option)`` and ``encode_video`` (no cross encoder). The video is
        encoded once per question, not once per option."""
        sizes = [len(o) for o in options]
        if len(sizes) != len(questions) or min(sizes, default=0) < 1:
            raise ValueError(f"tiny host score_options: need one non-empty option list per question, got {sizes} "
                             f"for {len(questions)} questions")
        texts = [f"{q} {o}" for q, opts in zip(questions, options) for o in opts]
        rows = torch.repeat_interleave(torch.arange(len(sizes), device=video.device),
                                       torch.tensor(sizes, device=video.device))
        cols = torch.cat([torch.arange(n, device=video.device) for n in sizes])
        if self.cross is None:
            v, t = self.encode_video(video), self.encode_text(texts)
            flat = (t * v[rows]).sum(-1) * self.logit_scale.exp().clamp(max=100)
        else:
            tok = self._tok(texts)
            ct, cv, _ = self._cross_inputs(tok.input_ids, tok.attention_mask, video)
            flat = self.vtm_head(self.cross(ct, tok.attention_mask, cv[rows])[1][:, 0]).squeeze(-1)
        out = flat.new_full((len(sizes), max(sizes)), float("-inf"))
        return out.index_put((rows, cols), flat)
