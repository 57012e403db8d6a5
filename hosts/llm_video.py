"""Shared machinery of the LLM hosts (Video-LLaVA, Video-ChatGPT, ...): a video encoder whose projected tokens
replace a ``<video>`` placeholder in an LLM prompt. Subclasses say how video becomes tokens
(:meth:`LLMVideoHost.video_tokens`) and where their LLM parts are; this class builds the prompts, runs the LLM
and implements every capability and the Finsta outputs.

Table 10 marks these hosts ``¥ V C``: the LLM is both the text and the cross-modal encoder. What Finsta reads
(sec 5.2, Eq 41; decisions logged in ``docs/paper-notes.md``):

* video: the video encoder's first-layer states per frame and its per-frame pooled output (host-specific);
* text and cross: one LLM pass over ``posttrain_template`` (text first, then the video tokens). With a causal
  LLM the text tokens see only the text (text pooled = last text token, final norm), while every video token
  sees the text (cross pooled per frame = mean of the LLM states of the video tokens of that frame);
  first-layer states = LLM ``layers[0]`` output (text tokens with char spans; video tokens with frame index and
  patch position);
* own loss: the captioning language-modelling loss in the inference layout (video, instruction, caption as the
  answer), reported under the Eq 42 ``"mlm"`` slot.

Capabilities: generation (greedy, KV cache); multiple choice by the (optionally length-normalised)
log-likelihood of each option as the answer; classification features; retrieval and paragraph retrieval by the
prompt-based embeddings of E5-V (Jiang et al., arXiv:2407.12580): a video is embedded as the final-norm LLM
state of the last token of ``... <video>\\nSummarize the above video in one word: ASSISTANT:``, a text (caption
or paragraph) as that of ``... {text}\\nSummarize the above sentence in one word: ASSISTANT:``; the score is
their cosine (the official code of these hosts has no retrieval head; N + M LLM passes for an N x M
retrieval, and fine-tuning trains both through the LLM with the symmetric InfoNCE). Zero-shot classification
(K400, Table 7) scores each class name by its length-normalised log-likelihood as the answer to
``classify_prompt``.

Shapes: ``B`` batch, ``T`` frames, ``N`` video tokens in the LLM, ``L`` sequence, ``D`` LLM width, ``d_v``
video encoder width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.pooling import last_token
from hosts.spec import HostSpec

VIDEO = "<video>"


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


@dataclass
class VideoTokens:
    """What a host's video encoder gives the LLM host machinery.

    Attributes:
        first: ``[B, Lv, d_v]`` first-layer token states of the video encoder (frame-major).
        first_frame_index / first_patch_rc: ``[B, Lv]`` / ``[B, Lv, 2]`` maps of ``first`` (-1: not a patch).
        grid: patch grid ``(rows, cols)`` of one frame.
        frame_pooled: ``[B, T, d_v]`` per-frame pooled output of the video encoder.
        tokens: ``[B, N, D]`` projected video tokens that replace the ``<video>`` placeholder.
        token_frame_index / token_patch_rc: ``[N]`` / ``[N, 2]`` frame and patch of each LLM video token
            (-1 for tokens of no single frame or patch).
    """

    first: Tensor
    first_frame_index: Tensor
    first_patch_rc: Tensor
    grid: tuple[int, int]
    frame_pooled: Tensor
    tokens: Tensor
    token_frame_index: Tensor
    token_patch_rc: Tensor


class LLMVideoHost(Host):
    """Base of the LLM hosts. Subclasses implement :meth:`video_tokens`, :meth:`num_video_tokens` and the LLM
    accessors (:attr:`language_model`, :attr:`lm_head`, :attr:`input_embeddings`, :attr:`video_token_id`,
    :attr:`llm_width`, :attr:`video_width`)."""

    def __init__(self, spec: HostSpec, tokenizer: Any, preprocess: Preprocess,
                 posttrain_template: str = "USER: {text}\n<video>",
                 chat_template: str = "USER: <video>\n{text} ASSISTANT:",
                 caption_prompt: str = "Describe the video briefly.", max_text_tokens: int = 64,
                 mc_length_norm: bool = True,
                 embed_video_template: str = "USER: <video>\nSummarize the above video in one word: ASSISTANT:",
                 embed_text_template: str = "USER: {text}\nSummarize the above sentence in one word: ASSISTANT:",
                 max_embed_tokens: int = 256,
                 classify_prompt: str = "What action is performed in the video? Answer with its name.",
                 class_chunk: int = 32) -> None:
        super().__init__(spec, preprocess)
        self.tokenizer = tokenizer
        for tpl in (posttrain_template, chat_template):
            if tpl.count(VIDEO) != 1 or tpl.count("{text}") != 1:
                raise ValueError(f"template {tpl!r} needs exactly one {VIDEO} and one {{text}}")
        if embed_video_template.count(VIDEO) != 1 or "{text}" in embed_video_template:
            raise ValueError(f"embed_video_template {embed_video_template!r} needs one {VIDEO} and no {{text}}")
        if embed_text_template.count("{text}") != 1 or VIDEO in embed_text_template:
            raise ValueError(f"embed_text_template {embed_text_template!r} needs one {{text}} and no {VIDEO}")
        self.posttrain_template, self.chat_template = posttrain_template, chat_template
        self.caption_prompt, self.max_text_tokens, self.mc_length_norm = caption_prompt, max_text_tokens, mc_length_norm
        self.embed_video_template, self.embed_text_template = embed_video_template, embed_text_template
        self.max_embed_tokens, self.classify_prompt, self.class_chunk = max_embed_tokens, classify_prompt, class_chunk

    # -- what a subclass provides ------------------------------------------------------------------
    def video_tokens(self, video: Tensor) -> VideoTokens:
        """``[B, T, 3, H, W]`` -> :class:`VideoTokens`."""
        raise NotImplementedError

    def num_video_tokens(self, num_frames: int) -> int:
        """``N``: LLM video tokens for ``num_frames`` frames."""
        raise NotImplementedError

    @property
    def language_model(self) -> nn.Module:
        """The decoder stack (``LlamaModel``-like: ``inputs_embeds`` -> ``last_hidden_state`` after final norm)."""
        raise NotImplementedError

    @property
    def lm_head(self) -> nn.Module:
        raise NotImplementedError

    @property
    def input_embeddings(self) -> nn.Module:
        raise NotImplementedError

    @property
    def video_token_id(self) -> int:
        raise NotImplementedError

    @property
    def llm_width(self) -> int:
        raise NotImplementedError

    @property
    def video_width(self) -> int:
        raise NotImplementedError

    # -- widths ------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.llm_width

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.llm_width, "video": self.video_width, "cross": self.llm_width}

    def first_layer_widths(self) -> dict[str, int]:
        return self.encoder_widths()

    @property
    def _device(self) -> torch.device:
        return self.input_embeddings.weight.device

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
        """Token sequences ``BOS + template(text) [+ answer + EOS]`` with :meth:`num_video_tokens` video tokens
        in place of ``<video>`` (texts truncated to ``text_limit`` tokens, default ``max_text_tokens``)."""
        tok = self.tokenizer
        vid_id = self.video_token_id
        n_video = self.num_video_tokens(num_frames) if VIDEO in template else 0
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

    # -- LLM ---------------------------------------------------------------------------------------
    def _llm(self, seq: Sequence, tokens: Tensor | None, hidden: bool = False, **kw: Any) -> Any:
        """LLM pass with the projected video ``tokens`` ``[B, N, D]`` in the ``<video>`` slots (None: a
        text-only sequence)."""
        # video slots are overwritten: embed id 0 there (a slot token may lie outside the embedding table, as
        # Video-LLaMA's <ImageHere>, which the official code never embeds)
        emb = self.input_embeddings(seq.input_ids.masked_fill(seq.seg == 2, 0))
        if tokens is not None:
            vid = (seq.seg == 2).unsqueeze(-1)
            emb = emb.masked_scatter(vid, tokens.to(emb.dtype).reshape(-1, emb.shape[-1]))
        return self.language_model(inputs_embeds=emb, attention_mask=seq.mask.long(), position_ids=seq.position_ids,
                                   output_hidden_states=hidden, **kw)

    def _answer_logprobs(self, seq: Sequence, tokens: Tensor, greedy: bool = False) -> Any:
        """Sum of log-probabilities of the answer tokens (seg 3) per row and their count (and, if ``greedy``,
        whether every answer token is the argmax)."""
        h = self._llm(seq, tokens).last_hidden_state
        logp = torch.log_softmax(self.lm_head(h[:, :-1]).float(), -1)
        tgt = seq.input_ids[:, 1:]
        lp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        m = (seq.seg[:, 1:] == 3) & seq.mask[:, 1:]
        if greedy:
            hit = (logp.argmax(-1) == tgt) | ~m
            return (lp * m).sum(1), m.sum(1), hit.all(1)
        return (lp * m).sum(1), m.sum(1)

    @torch.no_grad()
    def answer_loglikelihood(self, video: Tensor, prompts: list[str], answers: list[str],
                             frame_times: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``[B]`` summed log-probability of each answer (+ EOS) after ``chat_template(prompt)`` with its video, and
        ``[B]`` whether every answer token is the greedy choice (lmms-eval ``loglikelihood``)."""
        seq = self.build(self.chat_template, prompts, video.shape[1], answers=answers)
        lp, _, greedy = self._answer_logprobs(seq, self.video_tokens(video).tokens, greedy=True)
        return lp, greedy

    # -- capabilities ------------------------------------------------------------------------------
    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None,
                     tokens: Tensor | None = None) -> Tensor:
        """Teacher-forced LM loss of ``texts`` as the answer to ``caption_prompt`` (mean over answer tokens)."""
        if tokens is None:
            tokens = self.video_tokens(video).tokens
        seq = self.build(self.chat_template, [self.caption_prompt] * len(texts), video.shape[1], answers=texts)
        lp, n = self._answer_logprobs(seq, tokens)
        return -lp.sum() / n.sum().clamp_min(1)

    @torch.no_grad()
    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        """Greedy decoding (KV cache) of answers to ``prompts`` (``caption_prompt`` when None)."""
        b = video.shape[0]
        prompts = prompts or [self.caption_prompt] * b
        tokens = self.video_tokens(video).tokens
        seq = self.build(self.chat_template, prompts, video.shape[1])
        out = self._llm(seq, tokens, use_cache=True)
        past, mask, pos = out.past_key_values, seq.mask.long(), seq.position_ids[:, -1:]
        nxt = self.lm_head(out.last_hidden_state[:, -1]).argmax(-1)
        eos = self.tokenizer.eos_token_id
        done = torch.zeros(b, dtype=torch.bool, device=nxt.device)
        steps: list[Tensor] = []
        for _ in range(max_new_tokens):
            steps.append(torch.where(done, torch.full_like(nxt, -1), nxt))
            done |= nxt == eos if eos is not None else done
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones(b, 1, dtype=mask.dtype, device=mask.device)], 1)
            pos = pos + 1
            step = self.language_model(inputs_embeds=self.input_embeddings(nxt[:, None]), attention_mask=mask,
                                       position_ids=pos, past_key_values=past, use_cache=True)
            past = step.past_key_values
            nxt = self.lm_head(step.last_hidden_state[:, -1]).argmax(-1)
        ids = torch.stack(steps, 1) if steps else torch.empty(b, 0, dtype=torch.long)
        keep = [[i for i in row.tolist() if i >= 0 and i != eos] for row in ids]
        return [self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in keep]

    @torch.no_grad()
    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """``[B, K]`` log-likelihood of each option as the answer (mean per token if ``mc_length_norm``); rows
        with fewer options are padded with ``-inf``."""
        k = max(len(o) for o in options)
        flat_q = [q for q, opts in zip(questions, options) for _ in opts]
        flat_a = [a for opts in options for a in opts]
        counts = torch.tensor([len(o) for o in options])
        tokens = self.video_tokens(video).tokens.repeat_interleave(counts.to(self._device), 0)
        seq = self.build(self.chat_template, flat_q, video.shape[1], answers=flat_a)
        lp, n = self._answer_logprobs(seq, tokens)
        if self.mc_length_norm:
            lp = lp / n.clamp_min(1)
        out = torch.full((len(options), k), float("-inf"), device=lp.device)
        row = torch.repeat_interleave(torch.arange(len(options)), counts)
        col = torch.cat([torch.arange(len(o)) for o in options])
        out[row.to(lp.device), col.to(lp.device)] = lp
        return out

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        """E5-V-style video embedding ``[B, D]``: final-norm LLM state of the last token of
        ``embed_video_template`` (retrieval and classification features; see the module docstring)."""
        seq = self.build(self.embed_video_template, [""] * video.shape[0], video.shape[1])
        return last_token(self._llm(seq, self.video_tokens(video).tokens).last_hidden_state, seq.mask)

    def encode_text(self, texts: list[str]) -> Tensor:
        """E5-V-style text embedding ``[B, D]`` (captions and paragraphs, up to ``max_embed_tokens`` tokens)."""
        seq = self.build(self.embed_text_template, texts, 0, text_limit=self.max_embed_tokens)
        return last_token(self._llm(seq, None).last_hidden_state, seq.mask)

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Final-norm LLM state of the last prompt token ``[B, D]`` (open-ended QA classification heads)."""
        seq = self.build(self.chat_template, texts, video.shape[1])
        return last_token(self._llm(seq, self.video_tokens(video).tokens).last_hidden_state, seq.mask)

    @torch.no_grad()
    def zeroshot_class_scores(self, video: Tensor, class_names: list[str], prompt: str = "{}",
                              frame_times: Tensor | None = None) -> Tensor:
        """``[B, N]`` length-normalised log-likelihood of ``prompt.format(name)`` as the answer to
        ``classify_prompt`` (zero-shot action recognition, Table 7), ``class_chunk`` classes per LLM batch."""
        b = video.shape[0]
        tokens = self.video_tokens(video).tokens
        answers = [prompt.format(n) for n in class_names]
        cols = []
        for i in range(0, len(answers), self.class_chunk):
            chunk = answers[i:i + self.class_chunk]
            k = len(chunk)
            seq = self.build(self.chat_template, [self.classify_prompt] * (b * k), video.shape[1], answers=chunk * b)
            lp, n = self._answer_logprobs(seq, tokens.repeat_interleave(k, 0))
            cols.append((lp / n.clamp_min(1)).view(b, k))
        return torch.cat(cols, 1)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        video = batch.video
        b, t = video.shape[:2]
        vt = self.video_tokens(video)
        seq = self.build(self.posttrain_template, batch.texts, t)
        out = self._llm(seq, vt.tokens, hidden=True)
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
        n = vt.tokens.shape[1]
        fidx = torch.full(seq.mask.shape, -1, dtype=torch.long, device=dev)
        prc = torch.full((*seq.mask.shape, 2), -1, dtype=torch.long, device=dev)
        fidx[is_vid] = vt.token_frame_index.to(dev).repeat(b)
        prc[is_vid] = vt.token_patch_rc.to(dev).repeat(b, 1)
        # cross pooled per frame: mean LLM state of the frame's video tokens  [B, T, D]; hosts whose video tokens
        # belong to no single frame (Video-LLaMA's video queries) give one clip-level output at the mean time
        v_states = last[is_vid].view(b, n, -1)
        cross_times = batch.frame_times
        if bool((vt.token_frame_index >= 0).any()):
            own = torch.nn.functional.one_hot(vt.token_frame_index.to(dev).clamp_min(0), t).to(last.dtype)
            own = own * (vt.token_frame_index.to(dev) >= 0).unsqueeze(-1).to(last.dtype)  # [N, T]
            cross_pooled = torch.einsum("bnd,nt->btd", v_states, own) / own.sum(0).clamp_min(1).view(1, t, 1)
        else:
            cross_pooled = v_states.mean(1, keepdim=True)
            cross_times = batch.frame_times.mean(1, keepdim=True)
        res = HostOutputs(
            text=EncoderOutput(TokenStates(t_states, t_mask, char_spans=t_spans), text_pooled),
            video=EncoderOutput(TokenStates(vt.first, torch.ones(vt.first.shape[:2], dtype=torch.bool, device=dev),
                                            frame_index=vt.first_frame_index, patch_rc=vt.first_patch_rc, grid=vt.grid),
                                vt.frame_pooled, frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(first, seq.mask, char_spans=seq.char_spans, frame_index=fidx,
                                            patch_rc=prc, grid=vt.grid), cross_pooled, frame_times=cross_times))
        if with_losses:
            res.losses["mlm"] = self.caption_loss(video, batch.texts, tokens=vt.tokens)
        return res
