"""Detector adapters (:class:`~finsta_core.sg.dsg.Detector`) that run a real model from a local checkpoint.

* :class:`FasterRCNNDetector` - torchvision Faster R-CNN ResNet-50 FPN (the paper's choice, ref [47]); region
  features ``f_i`` are the box-head outputs (``[n, 1024]``) of the final boxes.
* :class:`HFDetector` - any transformers object detector returning ``logits`` / ``pred_boxes`` (DETR, YOLOS,
  Conditional / Deformable DETR); features are the decoder / detection-token states of kept queries.

torchvision and transformers are imported lazily. Frames are ``[T, 3, H, W]`` float in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from finsta_core.sg.dsg import Detections

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """One class name per line (blank lines ignored); raise naming the file when missing or empty."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"class-name file {path} does not exist (one label per line, in the order of "
                                "the detector's output indices, background excluded)")
    with open(path, encoding="utf-8") as f:
        names = [ln.strip() for ln in f if ln.strip()]
    if not names:
        raise ValueError(f"class-name file {path} is empty")
    return names


def _load_state(path: str | os.PathLike, what: str) -> dict[str, Tensor]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} checkpoint {path} does not exist; train one or convert published "
                                "weights to a local state dict (.pt / .pth / .safetensors) first")
    if os.path.isdir(path) or os.path.getsize(path) == 0:
        raise ValueError(f"{what} checkpoint {path} is {'a directory' if os.path.isdir(path) else 'empty'}; "
                         "expected a state dict file (.pt / .pth / .safetensors)")
    try:
        if os.fspath(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(os.fspath(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file becomes one line naming it
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{what} checkpoint {path} cannot be read as a state dict ({type(err).__name__}: "
                         f"{msg[:160]})") from None
    state = state.get("model", state.get("state_dict", state)) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{what} checkpoint {path} is not a state dict of tensors (got {type(state).__name__})")
    return state


class FasterRCNNDetector:
    """torchvision ``fasterrcnn_resnet50_fpn`` with ``len(classes) + 1`` outputs (index 0 = background).

    Args:
        classes: class names (e.g. the 1600 Visual Genome objects).
        checkpoint: local state dict; ``None`` keeps random weights (tests only).
        score_threshold: minimum detection score.
        min_size / max_size: torchvision resize bounds (smaller = faster).
        model: an already built model (skips construction).
    """

    def __init__(self, classes: Sequence[str], checkpoint: str | os.PathLike | None = None,
                 score_threshold: float = 0.3, max_detections: int = 40, min_size: int = 600, max_size: int = 1000,
                 device: str = "cpu", model: Any = None) -> None:
        self.classes = list(classes)
        if model is None:
            from torchvision.models.detection import fasterrcnn_resnet50_fpn

            model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=len(self.classes) + 1,
                                            min_size=min_size, max_size=max_size, box_score_thresh=score_threshold,
                                            box_detections_per_img=max_detections)
            if checkpoint is not None:
                try:
                    missing, unexpected = model.load_state_dict(_load_state(checkpoint, "Faster R-CNN"),
                                                                strict=False)
                except RuntimeError as err:  # shape mismatch: another class count or architecture
                    lines = str(err).strip().splitlines() or [""]
                    raise ValueError(f"Faster R-CNN checkpoint {checkpoint} does not fit a fasterrcnn_resnet50_fpn "
                                     f"with {len(self.classes)} classes + background ({lines[-1].strip()[:160]})"
                                     ) from None
                if missing or unexpected:
                    raise ValueError(f"Faster R-CNN checkpoint {checkpoint} does not match {len(self.classes)} "
                                     f"classes: missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.model = model.eval().to(device)
        self.device = device

    @torch.no_grad()
    def __call__(self, frames: Tensor) -> list[Detections]:
        m = self.model
        imgs = [f.to(self.device) for f in frames]
        sizes = [tuple(f.shape[-2:]) for f in imgs]
        images, _ = m.transform(imgs)
        feats = m.backbone(images.tensors)
        proposals, _ = m.rpn(images, feats)
        dets, _ = m.roi_heads(feats, proposals, images.image_sizes)
        boxes_t = [d["boxes"] for d in dets]
        region = m.roi_heads.box_head(m.roi_heads.box_roi_pool(feats, boxes_t, images.image_sizes))
        dets = m.transform.postprocess(dets, images.image_sizes, sizes)
        out, k = [], 0
        for d in dets:
            n = d["boxes"].shape[0]
            names = [self.classes[int(c) - 1] for c in d["labels"]]
            out.append(Detections(d["boxes"].cpu(), names, d["scores"].cpu(), region[k:k + n].cpu()))
            k += n
        return out


class HFDetector:
    """A transformers object detector (DETR-style set prediction) from a local directory or a built model.

    Args:
        model_or_path: ``AutoModelForObjectDetection`` directory, or a model instance.
        classes: names per label index; default ``model.config.id2label``.
        image_size: ``(height, width)`` the frames are resized to before the model.
    """

    def __init__(self, model_or_path: Any, classes: Sequence[str] | None = None, score_threshold: float = 0.3,
                 max_detections: int = 40, image_size: tuple[int, int] = (512, 512), device: str = "cpu") -> None:
        if isinstance(model_or_path, (str, os.PathLike)):
            if not os.path.isdir(model_or_path):
                raise FileNotFoundError(f"transformers detector directory {model_or_path} does not exist (save one "
                                        "with model.save_pretrained(DIR) on a machine that has the weights)")
            from transformers import AutoModelForObjectDetection

            if not os.path.isfile(os.path.join(model_or_path, "config.json")):
                raise FileNotFoundError(f"transformers detector directory {model_or_path} has no config.json (save "
                                        "one with model.save_pretrained(DIR))")
            try:
                model_or_path = AutoModelForObjectDetection.from_pretrained(os.fspath(model_or_path))
            except (OSError, ValueError, KeyError) as err:
                raise ValueError(f"transformers detector directory {model_or_path} cannot be loaded "
                                 f"({type(err).__name__}: {str(err).strip().splitlines()[0][:160]})") from None
        self.model = model_or_path.eval().to(device)
        cfg = self.model.config
        self.classes = list(classes) if classes is not None else [cfg.id2label[i] for i in range(cfg.num_labels)]
        self.score_threshold, self.max_detections = score_threshold, max_detections
        self.image_size, self.device = tuple(image_size), device

    @torch.no_grad()
    def __call__(self, frames: Tensor) -> list[Detections]:
        h, w = frames.shape[-2:]
        x = torch.nn.functional.interpolate(frames.float(), size=self.image_size, mode="bilinear", align_corners=False)
        mean = x.new_tensor(_IMAGENET_MEAN)[:, None, None]
        std = x.new_tensor(_IMAGENET_STD)[:, None, None]
        out = self.model(pixel_values=((x - mean) / std).to(self.device), output_hidden_states=True)
        prob = out.logits.softmax(-1)[..., :-1]  # last class = "no object"
        score, label = prob.max(-1)
        cx, cy, bw, bh = out.pred_boxes.unbind(-1)
        boxes = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], -1)
        states = self._query_states(out, prob.shape[1])
        res = []
        for b in range(frames.shape[0]):
            keep = (score[b] > self.score_threshold).nonzero().flatten()
            keep = keep[score[b, keep].argsort(descending=True)[: self.max_detections]]
            res.append(Detections(boxes[b, keep].cpu(), [self.classes[int(c)] for c in label[b, keep]],
                                  score[b, keep].cpu(), None if states is None else states[b, keep].cpu()))
        return res

    @staticmethod
    def _query_states(out: Any, q: int) -> Tensor | None:
        """Per-query hidden states: DETR decoder output, or YOLOS' trailing detection tokens."""
        last = getattr(out, "last_hidden_state", None)
        if last is None and getattr(out, "hidden_states", None):
            last = out.hidden_states[-1]
        if last is None:
            return None
        return last[:, -q:]
