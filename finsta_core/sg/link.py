"""Cross-modal coreference edges of the HSG (paper sec 3.3, Eq 7).

``a^C(v_i^T, v_j^D) = (CLIP(c_i^T, c_j^D) + CLIP(c_i^T, f_j^D)) / 2 > gamma^C`` (0.9), linking each TSG object
only to the *first* occurrence of a DSG track. Raw CLIP cosines rarely exceed 0.3, so (design note B.8) the
threshold is applied to a calibrated score: for each TSG object a temperature softmax over the distinct DSG
object labels of the video (each label scored by its best track), so ``a^C`` is the probability that the
text object names that visual class; every track of a label above ``gamma^C`` is linked at its first node.
``calibration="raw"`` applies the threshold to the raw mean cosine instead.

Scorers: :class:`NgramTextScorer` (label-to-label, hashed character n-grams, no download, no model) and
:class:`CLIPScorer` (text-text and text-image from a local ``CLIPModel`` checkpoint).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from finsta_core.graphs.types import DynamicSceneGraph, HolisticSceneGraph, NodeType, TextualSceneGraph
from finsta_core.sg.tracking import track_roots

GAMMA_C = 0.9


@runtime_checkable
class LabelScorer(Protocol):
    def __call__(self, text_labels: Sequence[str], visual_labels: Sequence[str]) -> Tensor:
        """-> ``[A, B]`` cosine similarities in [-1, 1]."""


class NgramTextScorer:
    """Cosine of hashed character n-gram vectors (``" label "`` padded, n in ``ns``); no model needed.

    It captures spelling overlap ("dog" ~ "dogs", "cutting board" ~ "board") but not synonymy ("man" vs
    "person"); pass ``aliases`` (text word -> visual class) or use :class:`CLIPScorer` for that.
    """

    def __init__(self, ns: Sequence[int] = (2, 3, 4), dim: int = 4096, aliases: dict[str, str] | None = None):
        self.ns, self.dim, self.aliases = tuple(ns), dim, dict(aliases or {})

    def embed(self, labels: Sequence[str]) -> Tensor:
        out = torch.zeros(len(labels), self.dim)
        rows, cols = [], []
        for r, s in enumerate(labels):
            s = f" {self.aliases.get(s.lower(), s.lower())} "
            for n in self.ns:
                for i in range(max(1, len(s) - n + 1)):
                    rows.append(r)
                    cols.append(zlib.crc32(s[i:i + n].encode()) % self.dim)
        if rows:
            out.index_put_((torch.tensor(rows), torch.tensor(cols)), torch.ones(len(rows)), accumulate=True)
        return torch.nn.functional.normalize(out, dim=1)

    def __call__(self, text_labels: Sequence[str], visual_labels: Sequence[str]) -> Tensor:
        return self.embed(text_labels) @ self.embed(visual_labels).T


class CLIPScorer:
    """CLIP text-text and text-image cosines from a local checkpoint (transformers ``CLIPModel``).

    Args:
        model_or_path: checkpoint directory or a ``CLIPModel``.
        tokenize: ``list[str] -> dict(input_ids, attention_mask)``; default the checkpoint's tokenizer.
    """

    def __init__(self, model_or_path: Any, tokenize: Callable[[list[str]], dict[str, Tensor]] | None = None,
                 device: str = "cpu", prompt: str = "a photo of a {}.") -> None:
        from transformers import CLIPModel

        path = model_or_path if isinstance(model_or_path, (str, os.PathLike)) else None
        if path is not None:
            if not os.path.isdir(path):
                raise FileNotFoundError(f"CLIP checkpoint directory {path} does not exist (save one with "
                                        "CLIPModel.save_pretrained and the tokenizer's save_pretrained)")
            if not os.path.isfile(os.path.join(path, "config.json")):
                raise FileNotFoundError(f"CLIP checkpoint directory {path} has no config.json (save one with "
                                        "CLIPModel.save_pretrained and the tokenizer's save_pretrained)")
            try:
                model_or_path = CLIPModel.from_pretrained(os.fspath(path))
            except (OSError, ValueError, KeyError) as err:
                raise ValueError(f"CLIP checkpoint directory {path} cannot be loaded ({type(err).__name__}: "
                                 f"{str(err).strip().splitlines()[0][:160]})") from None
        if tokenize is None:
            from transformers import AutoTokenizer

            try:
                tok = AutoTokenizer.from_pretrained(os.fspath(path))
            except (OSError, ValueError, KeyError) as err:
                raise ValueError(f"CLIP checkpoint directory {path} has no usable tokenizer ({type(err).__name__}: "
                                 f"{str(err).strip().splitlines()[0][:160]}); save it with the tokenizer's "
                                 "save_pretrained") from None
            tokenize = lambda xs: dict(tok(xs, padding=True, truncation=True, return_tensors="pt"))  # noqa: E731
        self.model, self.tokenize, self.device, self.prompt = model_or_path.eval().to(device), tokenize, device, prompt
        vc = self.model.config.vision_config
        self.image_size = int(vc.image_size)

    @staticmethod
    def _unit(x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else (getattr(x, "text_embeds", None) or getattr(x, "image_embeds", None)
                                            or x.pooler_output)
        return torch.nn.functional.normalize(x.float(), dim=-1)

    @torch.no_grad()
    def text_embed(self, labels: Sequence[str]) -> Tensor:
        enc = self.tokenize([self.prompt.format(s) for s in labels])
        return self._unit(self.model.get_text_features(**{k: v.to(self.device) for k, v in enc.items()})).cpu()

    @torch.no_grad()
    def image_embed(self, frames: Tensor, frame_index: Tensor, boxes: Tensor) -> Tensor:
        """Embed box crops: ``frames [T, 3, H, W]`` in [0, 1], ``frame_index [B]``, ``boxes [B, 4]`` -> ``[B, D]``."""
        from torchvision.ops import roi_align

        rois = torch.cat([frame_index.float()[:, None], boxes.float()], 1)
        crops = roi_align(frames.float(), rois, output_size=self.image_size, aligned=True)
        mean = crops.new_tensor([0.4815, 0.4578, 0.4082])[:, None, None]
        std = crops.new_tensor([0.2686, 0.2613, 0.2758])[:, None, None]
        return self._unit(self.model.get_image_features(pixel_values=((crops - mean) / std).to(self.device))).cpu()

    def __call__(self, text_labels: Sequence[str], visual_labels: Sequence[str]) -> Tensor:
        return self.text_embed(text_labels) @ self.text_embed(visual_labels).T


def link_hsg(tsg: TextualSceneGraph, dsg: DynamicSceneGraph, label_scorer: LabelScorer,
             visual_sim: Tensor | None = None, gamma: float = GAMMA_C, calibration: str = "softmax",
             temperature: float = 0.05, sample_id: str = "") -> HolisticSceneGraph:
    """Build the HSG: Eq 7 scores between TSG objects and DSG track starts, calibrated and thresholded.

    Args:
        visual_sim: optional ``[n_tsg_objects, n_dsg_objects]`` ``CLIP(c^T, f^D)`` cosines (object nodes in
            node order); without it ``a^C`` uses the label term only.
        calibration: ``"softmax"`` (default, see module doc) or ``"raw"``.
        temperature: softmax temperature on cosines (0.05 ~ CLIP's logit scale of 20).
    Returns:
        a validated :class:`HolisticSceneGraph`; ``dsg.meta["cross_edge_rate"]`` = share of TSG objects linked.
    """
    t_obj = (tsg.node_type == NodeType.OBJECT).nonzero().flatten()
    d_obj = (dsg.node_type == NodeType.OBJECT).nonzero().flatten()
    empty = HolisticSceneGraph(tsg, dsg, torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), sample_id)
    if t_obj.numel() == 0 or d_obj.numel() == 0:
        dsg.meta["cross_edge_rate"] = 0.0
        return empty.validate()
    root = track_roots(dsg.num_nodes, dsg.temporal_index)
    starts = d_obj[root[d_obj] == d_obj]  # first node of every track
    d_labels = [dsg.labels[i] for i in starts.tolist()]
    uniq = list(dict.fromkeys(d_labels))
    lab_sim = label_scorer([tsg.labels[i] for i in t_obj.tolist()], uniq)  # [A, U]
    gid = torch.tensor([uniq.index(s) for s in d_labels])
    score = lab_sim[:, gid]  # [A, S] label term per track start
    if visual_sim is not None:
        # visual term of a track: its best-matching node over the whole track (any keyframe)
        track_of = root[d_obj]
        pos = torch.searchsorted(starts, track_of)
        vis = torch.full((t_obj.numel(), starts.numel()), -1.0)
        vis = vis.scatter_reduce(1, pos.expand(t_obj.numel(), -1), visual_sim.float(), "amax", include_self=True)
        score = (score + vis) / 2  # a^C = (CLIP(c^T, c^D) + CLIP(c^T, f^D)) / 2 (Eq 7)
    if calibration == "softmax":
        per_label = torch.full((t_obj.numel(), len(uniq)), -1e4).scatter_reduce(
            1, gid.expand(t_obj.numel(), -1), score, "amax", include_self=True)
        prob = (per_label / temperature).softmax(1)
        calibrated = prob[:, gid]
    elif calibration == "raw":
        calibrated = score
    else:
        raise ValueError(f"calibration must be 'softmax' or 'raw', got {calibration!r}")
    a, s = (calibrated > gamma).nonzero(as_tuple=True)
    out = HolisticSceneGraph(tsg, dsg, torch.stack([t_obj[a], starts[s]]), calibrated[a, s], sample_id)
    dsg.meta["cross_edge_rate"] = float(a.unique().numel() / t_obj.numel())
    return out.validate()
