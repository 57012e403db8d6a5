"""Video-ChatGPT (Maaz et al., ACL 2024; github.com/mbzuai-oryx/Video-ChatGPT @659e04b), native: transformers'
``CLIPVisionModel`` + spatio-temporal pooling + one ``nn.Linear`` at ``model.mm_projector`` + ``LlamaForCausalLM``.
Prompts, capabilities and the Finsta outputs are the shared LLM-host machinery (``hosts/llm_video.py``).

Video tokens (official ``inference.py``, ``get_spatio_temporal_features_torch``): the penultimate CLIP layer
without ``[CLS]`` gives ``[T, P, C]`` per video; temporal tokens = per-frame mean over patches, zero-padded to
``temporal_slots`` (100) frames, spatial tokens = per-patch mean over frames; ``[temporal; spatial]`` (100 + P
tokens, 356 for ViT-L/14 at 224 px) goes through ``mm_projector`` into the LLM between ``<vid_start>`` and
``<vid_end>`` in place of ``<vid_patch>`` tokens (official ``VideoChatGPTLlamaModel.forward``). The official
function casts the pooled features to float16 (it runs on GPU in half precision); we keep the model's dtype.

Finsta's video encoder outputs: first layer = CLIP ``encoder.layers[0]`` per frame; pooled per frame = the
temporal token (mean of the frame's penultimate patch states, what the LLM sees of that frame). In the LLM,
temporal token ``t`` belongs to frame ``t`` (cross pooled per frame = its LLM state); spatial tokens (a patch
averaged over all frames) belong to no frame, so Finsta's node pooling (boxes on one frame) does not use them.

Checkpoint (``create_host("video_chatgpt", checkpoint=DIR)``), the official files side by side::

    DIR/video_chatgpt-7B.bin              # HF MBZUAI/Video-ChatGPT-7B: model.mm_projector.{weight,bias}
    DIR/LLaVA-7B-Lightening-v1-1/         # HF mmaaz60/LLaVA-7B-Lightening-v1-1 (config.json, weights, tokenizer)
    DIR/clip-vit-large-patch14/           # HF openai/clip-vit-large-patch14

(``llm=`` / ``vision=`` point elsewhere.) As the official ``initialize_model``: the tokenizer gains
``<vid_patch>``, ``<vid_start>``, ``<vid_end>`` when missing, the embeddings are resized to the tokenizer, and
the projector file is loaded over the LLM weights.

Shapes: ``B`` batch, ``T`` frames, ``P`` patches, ``C`` CLIP width, ``D`` LLM width.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import Preprocess
from hosts.checkpoints import check_checkpoint_path, weight_files
from hosts.errors import CheckpointError
from hosts.io import load_config, load_state_dict
from hosts.llm_video import LLMVideoHost, VideoTokens
from hosts.pooling import video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VID_PATCH, VID_START, VID_END = "<vid_patch>", "<vid_start>", "<vid_end>"
SYSTEM = ("You are Video-ChatGPT, a large vision-language assistant. You are able to understand the video content "
          "that the user provides, and assist the user with a variety of tasks using natural language.Follow the "
          "instructions carefully and explain your answers in detail based on the provided video.")
LLM_DIR, VISION_DIR = "LLaVA-7B-Lightening-v1-1", "clip-vit-large-patch14"


def spatio_temporal_pool(features: Tensor, temporal_slots: int) -> Tensor:
    """Official pooling: ``[B, T, P, C]`` penultimate patch states -> ``[B, temporal_slots + P, C]`` =
    [per-frame means over patches, zero-padded to ``temporal_slots``; per-patch means over frames]."""
    b, t, _, c = features.shape
    if t > temporal_slots:
        raise ValueError(f"video_chatgpt takes at most {temporal_slots} frames (official), got {t}")
    temporal = features.mean(2)
    pad = temporal.new_zeros(b, temporal_slots - t, c)
    return torch.cat([temporal, pad, features.mean(1)], 1)


class VideoChatGPTHost(LLMVideoHost):
    """Video-ChatGPT: retrieval, classification, generation, multiple choice (see ``hosts/llm_video.py``)."""

    def __init__(self, spec: HostSpec, vision_config: Any, llm_config: Any, tokenizer: Any, num_frames: int = 100,
                 temporal_slots: int = 100, preprocess: Preprocess | None = None, **options: Any) -> None:
        from transformers import CLIPVisionModel, LlamaForCausalLM

        options.setdefault("chat_template", f"{SYSTEM} USER: {{text}}\n{VID_START}<video>{VID_END} ASSISTANT:")
        options.setdefault("posttrain_template", f"{SYSTEM} USER: {{text}}\n{VID_START}<video>{VID_END}")
        options.setdefault("embed_video_template",
                           f"{SYSTEM} USER: {VID_START}<video>{VID_END}\nSummarize the above video in one word: "
                           "ASSISTANT:")
        options.setdefault("embed_text_template",
                           f"{SYSTEM} USER: {{text}}\nSummarize the above sentence in one word: ASSISTANT:")
        super().__init__(spec, tokenizer, preprocess or Preprocess(
            num_frames=num_frames, resolution=vision_config.image_size, mean=CLIP_MEAN, std=CLIP_STD), **options)
        if num_frames > temporal_slots:
            raise ValueError(f"num_frames {num_frames} > temporal_slots {temporal_slots}")
        self.vision = CLIPVisionModel(vision_config)
        self.llm = LlamaForCausalLM(llm_config)
        self.llm.model.mm_projector = nn.Linear(vision_config.hidden_size, llm_config.hidden_size)
        self.temporal_slots = temporal_slots
        side = vision_config.image_size // vision_config.patch_size
        self.grid = (side, side)
        missing = [t for t in (VID_PATCH, VID_START, VID_END) if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
        if self.llm.get_input_embeddings().num_embeddings < len(tokenizer):
            self.llm.resize_token_embeddings(len(tokenizer))
        self._vid_patch = tokenizer.convert_tokens_to_ids(VID_PATCH)

    # -- LLM parts ---------------------------------------------------------------------------------
    @property
    def language_model(self) -> nn.Module:
        return self.llm.model

    @property
    def lm_head(self) -> nn.Module:
        return self.llm.lm_head

    @property
    def input_embeddings(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    @property
    def video_token_id(self) -> int:
        return int(self._vid_patch)

    @property
    def llm_width(self) -> int:
        return self.llm.config.hidden_size

    @property
    def video_width(self) -> int:
        return self.vision.config.hidden_size

    def num_video_tokens(self, num_frames: int) -> int:
        return self.temporal_slots + self.grid[0] * self.grid[1]

    # -- video -------------------------------------------------------------------------------------
    def frame_features(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, 3, H, W]`` -> first layer ``[B, T*(1+P), C]`` and penultimate patch states ``[B, T, P, C]``."""
        b, t = video.shape[:2]
        out = self.vision(pixel_values=video.flatten(0, 1).to(self.vision.dtype), output_hidden_states=True)
        first = out.hidden_states[1]
        feats = out.hidden_states[-2][:, 1:]
        return first.reshape(b, t * first.shape[1], -1), feats.reshape(b, t, *feats.shape[1:])

    def video_tokens(self, video: Tensor) -> VideoTokens:
        b, t = video.shape[:2]
        first, feats = self.frame_features(video)
        pooled = spatio_temporal_pool(feats, self.temporal_slots)
        tokens = self.llm.model.mm_projector(pooled.to(self.llm.model.mm_projector.weight.dtype))
        fidx, prc = video_token_maps(b, t, self.grid, cls_tokens=1, device=video.device)
        n_patch = self.grid[0] * self.grid[1]
        tok_frame = torch.full((self.temporal_slots + n_patch,), -1, dtype=torch.long, device=video.device)
        tok_frame[:t] = torch.arange(t, device=video.device)
        tok_rc = torch.full((tok_frame.shape[0], 2), -1, dtype=torch.long, device=video.device)
        return VideoTokens(first, fidx, prc, self.grid, pooled[:, :t], tokens, tok_frame, tok_rc)


# ---------------------------------------------------------------------------------------------------------
# checkpoint


def _hf_state(directory: Path, what: str, source: str) -> dict[str, Tensor]:
    check_checkpoint_path(directory, what, source)
    files = sorted(directory.glob("*.safetensors")) or weight_files(directory)
    state: dict[str, Tensor] = {}
    for f in files:
        state.update(load_state_dict(f, what=what, source=source))
    return state


def _llama_config(directory: Path) -> Any:
    """``LlamaConfig`` from an official LLM directory (``model_type`` VideoChatGPT / llava / llama)."""
    from transformers import LlamaConfig

    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: no config.json (the LLM directory {LLM_DIR}; get it from HF hub "
                              "mmaaz60/LLaVA-7B-Lightening-v1-1)")
    cfg = json.loads(path.read_text())
    for key in ("model_type", "architectures", "transformers_version", "auto_map"):
        cfg.pop(key, None)
    return LlamaConfig(**cfg)


def _load_checked(host: VideoChatGPTHost, state: dict[str, Tensor], path: Path, strict: bool) -> None:
    own = host.state_dict()
    missing, unexpected = host.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if host.llm.config.tie_word_embeddings:
        missing = [k for k in missing if k != "llm.lm_head.weight"]
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if strict and (missing or unexpected or bad):
        raise CheckpointError(f"{path}: does not match video_chatgpt: missing {missing[:5]}, unexpected "
                              f"{unexpected[:5]}, shape mismatch {bad[:5]}")


def build_video_chatgpt(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, llm: Any = None,
                        vision: Any = None, llm_config: Any = None, vision_config: Any = None, tokenizer: Any = None,
                        dtype: str | None = None, strict: bool = True, **options: Any) -> VideoChatGPTHost:
    """Factory for ``create_host("video_chatgpt", checkpoint=DIR_OR_BIN, **config)`` (layout in the module
    docstring). ``llm`` / ``vision``: the LLM and CLIP directories (default: next to the projector file).
    ``llm_config`` / ``vision_config``: ``LlamaConfig`` / ``CLIPVisionConfig`` (objects, dicts, or a directory /
    ``config.json``) for random initialisation (``random_init=True``) or for a file saved by this host (a
    post-trained host: ``checkpoint=RUN/host.safetensors`` with both configs and ``tokenizer``). Other options go
    to :class:`VideoChatGPTHost` (``num_frames``, templates, ...)."""
    from transformers import CLIPVisionConfig, LlamaConfig

    root = checkpoint.parent if checkpoint is not None and checkpoint.is_file() else checkpoint
    llm_dir = Path(llm) if llm is not None else (root / LLM_DIR if root is not None else None)
    vision_dir = Path(vision) if vision is not None else (root / VISION_DIR if root is not None else None)
    llm_config = load_config(llm_config, LlamaConfig, "Video-ChatGPT LLM config")
    vision_config = load_config(vision_config, CLIPVisionConfig, "Video-ChatGPT CLIP config")
    own = None
    if checkpoint is not None and checkpoint.is_file():
        first = load_state_dict(checkpoint, what="Video-ChatGPT checkpoint", source="HF hub MBZUAI/Video-ChatGPT-7B")
        if any(k.startswith(("llm.", "vision.")) for k in first):  # saved by this host (e.g. after post-training)
            own = first
    if own is not None:
        if llm_config is None or vision_config is None or tokenizer is None:
            raise CheckpointError(f"{checkpoint}: a video_chatgpt host save needs llm_config, vision_config (objects, "
                                  f"dicts or config.json paths: {LLM_DIR}/, {VISION_DIR}/) and tokenizer ({LLM_DIR}/)")
        tok = load_tokenizer(tokenizer, "Video-ChatGPT (LLaVA-Lightning) tokenizer",
                             "HF hub mmaaz60/LLaVA-7B-Lightening-v1-1")
        host = VideoChatGPTHost(spec, vision_config, llm_config, tok, **options)
        _load_checked(host, own, checkpoint, strict)
        return host.to(getattr(torch, dtype)) if dtype is not None else host
    if checkpoint is not None:
        if llm_config is None:
            llm_config = _llama_config(llm_dir)
        if vision_config is None:
            check_checkpoint_path(vision_dir, "CLIP ViT-L/14 directory", "HF hub openai/clip-vit-large-patch14")
            vision_config = CLIPVisionConfig.from_pretrained(str(vision_dir), local_files_only=True)
    if llm_config is None or vision_config is None:
        raise CheckpointError("video_chatgpt needs its checkpoint directory (video_chatgpt-7B.bin, "
                              f"{LLM_DIR}/, {VISION_DIR}/) or llm_config and vision_config for random_init")
    if tokenizer is None and llm_dir is not None:
        tokenizer = llm_dir
    tok = load_tokenizer(tokenizer, "Video-ChatGPT (LLaVA-Lightning) tokenizer",
                         "HF hub mmaaz60/LLaVA-7B-Lightening-v1-1")
    host = VideoChatGPTHost(spec, vision_config, llm_config, tok, **options)
    if checkpoint is not None:
        state = {f"llm.{k}": v for k, v in _hf_state(llm_dir, "LLaVA-Lightning LLM weights",
                                                     "HF hub mmaaz60/LLaVA-7B-Lightening-v1-1").items()}
        # the CLIP directory is read by transformers itself (as the official code does): its key conversions
        # cover both CLIPModel and CLIPVisionModel checkpoints
        from transformers import CLIPVisionModel

        vis = CLIPVisionModel.from_pretrained(str(vision_dir), local_files_only=True, config=vision_config)
        state.update({f"vision.{k}": v for k, v in vis.state_dict().items()})
        proj = load_state_dict(checkpoint if checkpoint.is_file() else checkpoint / "video_chatgpt-7B.bin",
                               what="Video-ChatGPT projector", source="HF hub MBZUAI/Video-ChatGPT-7B")
        state.update({f"llm.{k}": v for k, v in proj.items()})
        have = host.state_dict()
        emb = "llm.model.embed_tokens.weight"
        if emb in state and state[emb].shape[0] < have[emb].shape[0]:  # tokenizer grew: keep the resized rows
            for key in (emb, "llm.lm_head.weight"):
                if key in state:
                    grown = have[key].clone()
                    grown[: state[key].shape[0]] = state[key]
                    state[key] = grown
        _load_checked(host, state, checkpoint, strict)
    if dtype is not None:
        host.to(getattr(torch, dtype))
    return host


SPEC = register_host(HostSpec(
    name="video_chatgpt", has_text=True, has_video=True, has_cross=True, llm_text_cross=True,
    capabilities=frozenset({"retrieval", "classification", "generation", "multiple_choice"}),
    factory=build_video_chatgpt, params="7.4B", pretrain_data="32B",
    paper="Maaz et al., Video-ChatGPT, ACL 2024", code="https://github.com/mbzuai-oryx/Video-ChatGPT",
    license="CC-BY-4.0", status="implemented", display="Video-ChatGPT", order=120, aliases=("video-chatgpt",),
    parity="tests/hosts/test_hosts_video_chatgpt.py::test_parity_with_official_code",
    notes="Native: CLIPVisionModel (penultimate, no CLS) + spatio-temporal pooling (100 temporal + P spatial "
          "tokens) + Linear model.mm_projector + LlamaForCausalLM (LLaVA-Lightning-7B-v1-1). The official "
          "evaluation scores answers with gpt-3.5-turbo; offline we use exact match / option likelihood.",
    tags={"": WeightTag("", "video_chatgpt-7B.bin", "Video-ChatGPT projector; next to it the directories "
                        f"{LLM_DIR}/ (LLM) and {VISION_DIR}/ (CLIP ViT-L/14)",
                        "HF hub MBZUAI/Video-ChatGPT-7B (video_chatgpt-7B.bin), mmaaz60/LLaVA-7B-Lightening-v1-1 "
                        f"(download into {LLM_DIR}/), openai/clip-vit-large-patch14 (into {VISION_DIR}/)")},
))
