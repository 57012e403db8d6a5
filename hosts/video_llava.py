"""Video-LLaVA (Lin et al., arXiv:2311.10122; github.com/PKU-YuanGroup/Video-LLaVA) through transformers'
``VideoLlavaForConditionalGeneration`` (video tower = CLIP-ViT-shaped LanguageBind encoder, projector,
Vicuna-7B v1.5 LLM).

Table 10 marks Video-LLaVA ``¥ V C``: the LLM is both the text and the cross-modal encoder. What Finsta
reads (sec 5.2, Eq 41; decisions logged in ``docs/paper-notes.md``):

* video: first layer = video tower ``encoder.layers[0]`` output per frame (``[CLS]`` + patches), pooled
  per frame = the ``[CLS]`` state at ``vision_feature_layer`` (-2), the layer whose tokens feed the LLM;
* text and cross: one LLM pass over ``posttrain_template`` (text first, then the video tokens). With a
  causal LLM the text tokens then see only the text (text pooled = last text token, final norm), while
  every video token sees the text (cross pooled per frame = mean of the frame's video-token states);
  first-layer states = LLM ``layers[0]`` output (text tokens with char spans; video tokens with frame
  index and patch position);
* own loss: the captioning language-modelling loss in the inference layout (video, instruction, caption
  as the answer), reported under the Eq 42 ``"mlm"`` slot.

Generation is greedy with a KV cache; multiple choice scores each option by its (length-normalised
optional) log-likelihood as the answer.

Retrieval and paragraph retrieval (Tables 3, 5; the official code has no retrieval head), scoring rule: the
prompt-based embeddings of E5-V (Jiang et al., arXiv:2407.12580): a video is embedded as the final-norm LLM state
of the last token of ``USER: <video>\nSummarize the above video in one word: ASSISTANT:``, a text (caption or
paragraph) as that of ``USER: {text}\nSummarize the above sentence in one word: ASSISTANT:``; the score is
their cosine. One pass per item, so an N x M retrieval costs N + M LLM passes (not N x M as caption-likelihood
re-ranking would); fine-tuning trains both through the LLM with the symmetric InfoNCE. ``encode_video`` (also
the classification feature) is this embedding. Zero-shot classification (K400, Table 7) scores each class
name by its length-normalised log-likelihood as the answer to ``classify_prompt``.

Shapes: ``B`` batch, ``T`` frames, ``P`` patches, ``D`` LLM width, ``d_v`` video tower width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.errors import CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import last_token, video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer

VIDEO = "<video>"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class Sequence:
    """A padded (left) LLM input. ``seg``: 0 template/special, 1 text, 2 video, 3 answer."""

    input_ids: Tensor  # [B, L]
    mask: Tensor  # [B, L] bool
    char_spans: Tensor  # [B, L, 2] (text / answer tokens, else -1)
    seg: Tensor  # [B, L] long

    @property
    def position_ids(self) -> Tensor:
        return (self.mask.long().cumsum(1) - 1).clamp_min(0)


class VideoLlavaHost(Host):
    """Video-LLaVA wrapper: generation, multiple choice, classification (mean projected video tokens)."""

    def __init__(self, spec: HostSpec, config: Any, tokenizer: Any, num_frames: int = 8,
                 posttrain_template: str = "USER: {text}\n<video>",
                 chat_template: str = "USER: <video>\n{text} ASSISTANT:",
                 caption_prompt: str = "Describe the video briefly.", max_text_tokens: int = 64,
                 mc_length_norm: bool = True,
                 embed_video_template: str = "USER: <video>\nSummarize the above video in one word: ASSISTANT:",
                 embed_text_template: str = "USER: {text}\nSummarize the above sentence in one word: ASSISTANT:",
                 max_embed_tokens: int = 256,
                 classify_prompt: str = "What action is performed in the video? Answer with its name.",
                 class_chunk: int = 32, preprocess: Preprocess | None = None) -> None:
        from transformers import VideoLlavaForConditionalGeneration

        vc = config.vision_config
        super().__init__(spec, preprocess or Preprocess(num_frames=num_frames, resolution=vc.image_size,
                                                        mean=CLIP_MEAN, std=CLIP_STD))
        if not isinstance(config.vision_feature_layer, int):
            raise ValueError("VideoLlavaHost supports an int vision_feature_layer")
        self.model = VideoLlavaForConditionalGeneration(config)
        self.tokenizer = tokenizer
        self.grid = (vc.image_size // vc.patch_size, vc.image_size // vc.patch_size)
        self.tokens_per_frame = 1 + self.grid[0] * self.grid[1]
        self.posttrain_template, self.chat_template = posttrain_template, chat_template
        self.caption_prompt, self.max_text_tokens, self.mc_length_norm = caption_prompt, max_text_tokens, mc_length_norm
        for tpl in (posttrain_template, chat_template):
            if tpl.count(VIDEO) != 1 or tpl.count("{text}") != 1:
                raise ValueError(f"template {tpl!r} needs exactly one {VIDEO} and one {{text}}")
        if embed_video_template.count(VIDEO) != 1 or "{text}" in embed_video_template:
            raise ValueError(f"embed_video_template {embed_video_template!r} needs one {VIDEO} and no {{text}}")
        if embed_text_template.count("{text}") != 1 or VIDEO in embed_text_template:
            raise ValueError(f"embed_text_template {embed_text_template!r} needs one {{text}} and no {VIDEO}")
        self.embed_video_template, self.embed_text_template = embed_video_template, embed_text_template
        self.max_embed_tokens, self.classify_prompt, self.class_chunk = max_embed_tokens, classify_prompt, class_chunk

    # -- widths ------------------------------------------------------------------------------------
    @property
    def llm_width(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def embed_dim(self) -> int:
        return self.llm_width

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.llm_width, "video": self.model.config.vision_config.hidden_size, "cross": self.llm_width}

    def first_layer_widths(self) -> dict[str, int]:
        return self.encoder_widths()

    @property
    def _device(self) -> torch.device:
        return self.model.lm_head.weight.device

    # -- inputs ------------------------------------------------------------------------------------
    def _pieces(self, s: str, seg: int, limit: int | None = None) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        if not s:
            return [], [], []
        enc = self.tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        if seg in (1, 3):
            n = limit or self.max_text_tokens
            ids, offs = ids[:n], enc["offset_mapping"][:n]
            return ids, [tuple(o) for o in offs], [seg] * len(ids)
        return ids, [(-1, -1)] * len(ids), [0] * len(ids)

    def build(self, template: str, texts: list[str], num_frames: int, answers: list[str] | None = None,
              text_limit: int | None = None) -> Sequence:
        """Token sequences ``BOS + template(text) [+ answer + EOS]`` with ``T * (1 + P)`` video tokens (texts
        truncated to ``text_limit`` tokens, default ``max_text_tokens``)."""
        tok = self.tokenizer
        vid_id = self.model.config.video_token_id
        n_video = num_frames * self.tokens_per_frame
        rows = []
        parts = re.split(r"(\{text\}|<video>)", template)
        for i, text in enumerate(texts):
            ids, spans, seg = ([tok.bos_token_id], [(-1, -1)], [0]) if tok.bos_token_id is not None else ([], [], [])
            for p in parts:
                if p == "{text}":
                    a, b, c = self._pieces(text, 1, text_limit)
                elif p == VIDEO:
                    a, b, c = [vid_id] * n_video, [(-1, -1)] * n_video, [2] * n_video
                else:
                    a, b, c = self._pieces(p, 0)
                ids, spans, seg = ids + a, spans + b, seg + c
            if answers is not None:
                a, b, c = self._pieces(" " + answers[i], 3)
                b = [(s - 1, e - 1) for s, e in b]  # offsets relative to the answer string itself
                eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
                ids, spans, seg = ids + a + eos, spans + b + [(-1, -1)] * len(eos), seg + c + [3] * len(eos)
            rows.append((ids, spans, seg))
        length = max(len(r[0]) for r in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        b = len(rows)
        out = Sequence(torch.full((b, length), pad, dtype=torch.long), torch.zeros(b, length, dtype=torch.bool),
                       torch.full((b, length, 2), -1, dtype=torch.long), torch.zeros(b, length, dtype=torch.long))
        for i, (ids, spans, seg) in enumerate(rows):
            n = len(ids)
            out.input_ids[i, length - n:] = torch.tensor(ids)
            out.mask[i, length - n:] = True
            out.char_spans[i, length - n:] = torch.tensor(spans, dtype=torch.long).clamp_min(-1)
            out.seg[i, length - n:] = torch.tensor(seg)
        dev = self._device
        return Sequence(out.input_ids.to(dev), out.mask.to(dev), out.char_spans.to(dev), out.seg.to(dev))

    # -- towers ------------------------------------------------------------------------------------
    def video_features(self, video: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, T, 3, H, W]`` -> first layer ``[B, T*(1+P), d_v]``, feature-layer ``[CLS]`` ``[B, T, d_v]``,
        projected video tokens ``[B, T*(1+P), D]`` (what replaces the ``<video>`` tokens)."""
        b, t = video.shape[:2]
        inner = self.model.model
        out = inner.video_tower(video.flatten(0, 1).to(self.model.dtype), output_hidden_states=True)
        feat = out.hidden_states[self.model.config.vision_feature_layer]
        proj = inner.multi_modal_projector(feat)
        first = out.hidden_states[1]
        first = first.reshape(b, t * first.shape[1], -1)
        return first, feat[:, 0].reshape(b, t, -1), proj.reshape(b, -1, proj.shape[-1])

    def _llm(self, seq: Sequence, proj: Tensor | None, hidden: bool = False, **kw: Any) -> Any:
        """LLM pass with the projected video tokens ``proj`` ``[B, T*(1+P), D]`` in the ``<video>`` slots (None:
        a text-only sequence)."""
        emb = self.model.get_input_embeddings()(seq.input_ids)
        if proj is not None:
            vid = (seq.seg == 2).unsqueeze(-1)
            emb = emb.masked_scatter(vid, proj.to(emb.dtype).reshape(-1, emb.shape[-1]))
        return self.model.model.language_model(inputs_embeds=emb, attention_mask=seq.mask.long(),
                                               position_ids=seq.position_ids, output_hidden_states=hidden, **kw)

    def _answer_logprobs(self, seq: Sequence, proj: Tensor) -> tuple[Tensor, Tensor]:
        """Sum of log-probabilities of the answer tokens (seg 3) per row, and their count."""
        h = self._llm(seq, proj).last_hidden_state
        logp = torch.log_softmax(self.model.lm_head(h[:, :-1]).float(), -1)
        tgt = seq.input_ids[:, 1:]
        lp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        m = (seq.seg[:, 1:] == 3) & seq.mask[:, 1:]
        return (lp * m).sum(1), m.sum(1)

    # -- capabilities ------------------------------------------------------------------------------
    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None,
                     proj: Tensor | None = None) -> Tensor:
        """Teacher-forced LM loss of ``texts`` as the answer to ``caption_prompt`` (mean over answer tokens)."""
        if proj is None:
            proj = self.video_features(video)[2]
        seq = self.build(self.chat_template, [self.caption_prompt] * len(texts), video.shape[1], answers=texts)
        lp, n = self._answer_logprobs(seq, proj)
        return -lp.sum() / n.sum().clamp_min(1)

    @torch.no_grad()
    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        """Greedy decoding (KV cache) of answers to ``prompts`` (``caption_prompt`` when None)."""
        b = video.shape[0]
        prompts = prompts or [self.caption_prompt] * b
        proj = self.video_features(video)[2]
        seq = self.build(self.chat_template, prompts, video.shape[1])
        out = self._llm(seq, proj, use_cache=True)
        past, mask, pos = out.past_key_values, seq.mask.long(), seq.position_ids[:, -1:]
        nxt = self.model.lm_head(out.last_hidden_state[:, -1]).argmax(-1)
        eos = self.tokenizer.eos_token_id
        done = torch.zeros(b, dtype=torch.bool, device=nxt.device)
        tokens: list[Tensor] = []
        for _ in range(max_new_tokens):
            tokens.append(torch.where(done, torch.full_like(nxt, -1), nxt))
            done |= nxt == eos if eos is not None else done
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones(b, 1, dtype=mask.dtype, device=mask.device)], 1)
            pos = pos + 1
            step = self.model.model.language_model(inputs_embeds=self.model.get_input_embeddings()(nxt[:, None]),
                                                   attention_mask=mask, position_ids=pos, past_key_values=past,
                                                   use_cache=True)
            past = step.past_key_values
            nxt = self.model.lm_head(step.last_hidden_state[:, -1]).argmax(-1)
        ids = torch.stack(tokens, 1) if tokens else torch.empty(b, 0, dtype=torch.long)
        keep = [[i for i in row.tolist() if i >= 0 and i != eos] for row in ids]
        return [self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in keep]

    @torch.no_grad()
    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """``[B, K]`` log-likelihood of each option as the answer (mean per token if ``mc_length_norm``)."""
        k = len(options[0])
        if any(len(o) != k for o in options):
            raise ValueError("score_options needs the same number of options for every question")
        proj = self.video_features(video)[2].repeat_interleave(k, 0)
        seq = self.build(self.chat_template, [q for q in questions for _ in range(k)], video.shape[1],
                         answers=[o for opts in options for o in opts])
        lp, n = self._answer_logprobs(seq, proj)
        if self.mc_length_norm:
            lp = lp / n.clamp_min(1)
        return lp.view(len(questions), k)

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        """E5-V-style video embedding ``[B, D]``: final-norm LLM state of the last token of
        ``embed_video_template`` (retrieval and classification features; see the module docstring)."""
        seq = self.build(self.embed_video_template, [""] * video.shape[0], video.shape[1])
        return last_token(self._llm(seq, self.video_features(video)[2]).last_hidden_state, seq.mask)

    def encode_text(self, texts: list[str]) -> Tensor:
        """E5-V-style text embedding ``[B, D]`` (captions and paragraphs, up to ``max_embed_tokens`` tokens)."""
        seq = self.build(self.embed_text_template, texts, 0, text_limit=self.max_embed_tokens)
        return last_token(self._llm(seq, None).last_hidden_state, seq.mask)

    @torch.no_grad()
    def zeroshot_class_scores(self, video: Tensor, class_names: list[str], prompt: str = "{}",
                              frame_times: Tensor | None = None) -> Tensor:
        """``[B, N]`` length-normalised log-likelihood of ``prompt.format(name)`` as the answer to
        ``classify_prompt`` (zero-shot action recognition, Table 7), ``class_chunk`` classes per LLM batch."""
        b = video.shape[0]
        proj = self.video_features(video)[2]
        answers = [prompt.format(n) for n in class_names]
        cols = []
        for i in range(0, len(answers), self.class_chunk):
            chunk = answers[i:i + self.class_chunk]
            k = len(chunk)
            seq = self.build(self.chat_template, [self.classify_prompt] * (b * k), video.shape[1],
                             answers=chunk * b)
            lp, n = self._answer_logprobs(seq, proj.repeat_interleave(k, 0))
            cols.append((lp / n.clamp_min(1)).view(b, k))
        return torch.cat(cols, 1)

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Final-norm LLM state of the last prompt token ``[B, D]`` (open-ended QA classification heads)."""
        seq = self.build(self.chat_template, texts, video.shape[1])
        return last_token(self._llm(seq, self.video_features(video)[2]).last_hidden_state, seq.mask)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        video = batch.video
        b, t = video.shape[:2]
        v_first, v_cls, proj = self.video_features(video)
        seq = self.build(self.posttrain_template, batch.texts, t)
        out = self._llm(seq, proj, hidden=True)
        first, last = out.hidden_states[1], out.last_hidden_state
        dev = first.device
        is_text, is_vid = seq.seg == 1, seq.seg == 2
        # text tokens gathered to the front (stable sort keeps their order): [B, Lt, D]
        lt = int(is_text.sum(1).max())
        order = torch.sort((~is_text).long(), dim=1, stable=True).indices[:, :lt]
        t_mask = is_text.gather(1, order)
        t_states = first.gather(1, order.unsqueeze(-1).expand(-1, -1, first.shape[-1]))
        t_spans = seq.char_spans.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))
        text_pooled = last_token(last, is_text)
        # video-token maps inside the LLM sequence
        fidx_v, prc_v = video_token_maps(b, t, self.grid, cls_tokens=1, device=dev)
        fidx = torch.full(seq.mask.shape, -1, dtype=torch.long, device=dev)
        prc = torch.full((*seq.mask.shape, 2), -1, dtype=torch.long, device=dev)
        fidx[is_vid] = fidx_v.reshape(-1)
        prc[is_vid] = prc_v.reshape(-1, 2)
        v_states = last[is_vid].view(b, t, self.tokens_per_frame, -1)
        cross_pooled = v_states.mean(2)
        res = HostOutputs(
            text=EncoderOutput(TokenStates(t_states, t_mask, char_spans=t_spans), text_pooled),
            video=EncoderOutput(TokenStates(v_first, torch.ones(v_first.shape[:2], dtype=torch.bool, device=dev),
                                            frame_index=fidx_v, patch_rc=prc_v, grid=self.grid),
                                v_cls, frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(first, seq.mask, char_spans=seq.char_spans, frame_index=fidx,
                                            patch_rc=prc, grid=self.grid), cross_pooled, frame_times=batch.frame_times))
        if with_losses:
            res.losses["mlm"] = self.caption_loss(video, batch.texts, proj=proj)
        return res


# ---------------------------------------------------------------------------------------------------------
# checkpoint


_OLD = (("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
        ("video_tower.", "model.video_tower."), ("image_tower.", "model.image_tower."),
        ("multi_modal_projector.", "model.multi_modal_projector."))


def to_model_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoint keys -> ``VideoLlavaForConditionalGeneration`` keys (older transformers layout, this host's
    own saved layout with a leading ``model.``)."""
    if any(k.startswith(("model.model.", "model.lm_head.")) for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    out = {}
    for k, v in state.items():
        for old, new in _OLD:
            if k.startswith(old):
                k = new + k[len(old):]
                break
        out[k] = v
    return out


def build_video_llava(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, config: Any = None,
                      tokenizer: Any = None, dtype: str | None = None, strict: bool = True,
                      **options: Any) -> VideoLlavaHost:
    """Factory for ``create_host("video_llava", checkpoint=DIR, **config)``.

    ``checkpoint``: a directory in transformers layout (``config.json``, ``*.safetensors``, tokenizer files),
    e.g. ``LanguageBind/Video-LLaVA-7B-hf``, or a single safetensors file saved by this host (then pass
    ``config``). ``config``: a ``VideoLlavaConfig`` (required for random initialisation). Other options go to
    :class:`VideoLlavaHost` (``num_frames``, templates, ``caption_prompt``, ``mc_length_norm`` ...).
    """
    from transformers import VideoLlavaConfig

    if config is None:
        if checkpoint is None or not (checkpoint / "config.json").exists():
            raise CheckpointError("video_llava needs `config` (VideoLlavaConfig) or a checkpoint directory with "
                                  "config.json (HF hub LanguageBind/Video-LLaVA-7B-hf)")
        config = VideoLlavaConfig.from_pretrained(str(checkpoint), local_files_only=True)
    elif isinstance(config, dict):
        config = VideoLlavaConfig(**config)
    if tokenizer is None and checkpoint is not None and checkpoint.is_dir():
        tokenizer = checkpoint
    tok = load_tokenizer(tokenizer, "Video-LLaVA tokenizer", "HF hub LanguageBind/Video-LLaVA-7B-hf")
    host = VideoLlavaHost(spec, config, tok, **options)
    if checkpoint is not None:
        files = sorted(checkpoint.glob("*.safetensors")) if checkpoint.is_dir() else [checkpoint]
        if not files:
            raise CheckpointError(f"{checkpoint}: no *.safetensors weights (Video-LLaVA-7B-hf layout expected)")
        state: dict[str, Tensor] = {}
        for f in files:
            state.update(load_state_dict(f, what="Video-LLaVA weights", source="LanguageBind/Video-LLaVA-7B-hf"))
        missing, unexpected = host.model.load_state_dict(to_model_state(state), strict=False)
        if config.tie_word_embeddings:
            missing = [k for k in missing if k != "lm_head.weight"]
        if strict and (missing or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match video_llava: missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}")
    if dtype is not None:
        host.to(getattr(torch, dtype))
    return host


SPEC = register_host(HostSpec(
    name="video_llava", has_text=True, has_video=True, has_cross=True, llm_text_cross=True,
    capabilities=frozenset({"retrieval", "classification", "generation", "multiple_choice"}),
    factory=build_video_llava, params="7.4B", pretrain_data="32B",
    paper="Lin et al., Video-LLaVA, arXiv:2311.10122 (2023)", code="https://github.com/PKU-YuanGroup/Video-LLaVA",
    license="Apache-2.0", status="implemented", display="Video-LLaVA", order=130,
    aliases=("video-llava", "videollava"),
    parity="tests/hosts/test_hosts_video_llava.py::test_parity_with_transformers_class",
    notes="transformers VideoLlavaForConditionalGeneration (LanguageBind video tower + Vicuna-7B v1.5); the LLM "
          "acts as text and cross-modal encoder.",
    tags={"": WeightTag("", "Video-LLaVA-7B-hf", "Video-LLaVA-7B in transformers layout (directory: config.json, "
                        "*.safetensors, tokenizer files)",
                        "download the HF hub repo LanguageBind/Video-LLaVA-7B-hf (e.g. `hf download "
                        "LanguageBind/Video-LLaVA-7B-hf --local-dir Video-LLaVA-7B-hf`)")},
))
