"""Bring your own model: wrap any torch module as a Finsta host through forward hooks and a YAML recipe.

The adapter builds the user's module (``model: "pkg.mod:attr"`` plus ``model_kwargs``), loads their
checkpoint safely (``hosts.io``), tokenises with the recipe's tokenizer (char spans from the offset mapping),
runs one declared call per batch and reads, through forward hooks on named submodules, the first-layer
token states and pooled outputs the recipe names for each encoder it declares (``text`` / ``video`` /
``cross``). A recipe is a YAML file or dict of the user's; ``docs/hosts.md`` documents the schema. (The
unverified recipes for the paper's hosts were removed: paper hosts are native modules with parity tests.)

Call arguments are references into the prepared inputs: ``text.input_ids``, ``text.attention_mask``
(long), ``text.token_type_ids`` (zeros), ``video`` (``[B, T, 3, H, W]``), ``video.flat``
(``[B*T, 3, H, W]``), ``video.channels_first`` (``[B, 3, T, H, W]``), ``video.mask`` (``[B, T]`` long),
``frame_times``; ``"=literal"`` passes a YAML literal. ``function: "pkg:fn"`` replaces the method call
with ``fn(model, inputs) -> Any`` for anything the binding language cannot express.

Token layouts of a hooked output ``[B, L, d]`` (or ``[L, B, d]`` with ``seq_first``, or per frame
``[B*T, n, d]``): ``text`` (aligned with the tokenised text), ``video`` (``global_tokens`` then, per frame
or tubelet, ``cls_tokens`` + ``rows*cols`` patches), ``concat`` (the ``segments`` in order, e.g.
``[text, video]``). Pooled selectors: ``cls`` (position 0), ``last`` (last real token), ``mean``,
``frame_cls``, ``frame_mean``, ``per_frame`` (output already ``[B, T, d]`` / ``[B*T, d]``), ``global``
(one vector, kept as a single "frame" at the clip's mean time).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import (
    CapabilityError,
    CheckpointError,
    EncoderOutput,
    Host,
    HostBatch,
    HostOutputs,
    HostSpec,
    Preprocess,
    TokenStates,
    WeightTag,
)
from hosts.io import load_state_dict
from hosts.pooling import last_token, masked_mean, video_token_maps
from hosts.text import TokenizedText, load_tokenizer, tokenize_with_spans

LAYOUTS, TEXT_SELECT = ("text", "video", "concat"), ("cls", "last", "mean")
FRAME_SELECT = ("frame_cls", "frame_mean", "per_frame", "global")


class RecipeError(ValueError):
    """A recipe is malformed or does not match the wrapped model (names the recipe and the field)."""


def import_attr(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class EncoderRecipe:
    first_layer: str
    pooled: str
    layout: str = "text"
    select: str = "cls"
    output_index: int = 0
    pooled_index: int = 0
    seq_first: bool = False
    segments: list[str] = field(default_factory=lambda: ["text", "video"])
    project: str | None = None  # module applied to the pooled output for retrieval embeddings


@dataclass
class Recipe:
    name: str
    model: str
    encoders: dict[str, EncoderRecipe]
    call: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # optional "text" / "video" calls
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    strip_prefixes: list[str] = field(default_factory=lambda: ["module."])
    tokenizer: str | None = None
    max_words: int = 32
    num_frames: int = 8
    resolution: int = 224
    patch_size: int = 16
    grid: list[int] | None = None
    cls_tokens: int = 1
    global_tokens: int = 0
    tubelet: int = 1
    mean: list[float] = field(default_factory=lambda: [0.48145466, 0.4578275, 0.40821073])
    std: list[float] = field(default_factory=lambda: [0.26862954, 0.26130258, 0.27577711])
    losses: str | None = None  # "pkg:fn(model, captured, inputs) -> dict[str, Tensor]"
    capabilities: list[str] = field(default_factory=list)
    source: str = ""  # where the official code / names come from
    notes: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "recipe") -> Recipe:
        d = dict(d)
        try:
            enc = {k: EncoderRecipe(**v) for k, v in (d.pop("encoders") or {}).items()}
            r = cls(encoders=enc, **d)
        except TypeError as err:
            raise RecipeError(f"{where}: {err}") from err
        r.validate(where)
        return r

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        from omegaconf import OmegaConf

        path = Path(path)
        if not path.exists():
            raise RecipeError(f"recipe not found: {path}")
        return cls.from_dict(OmegaConf.to_container(OmegaConf.load(path), resolve=True), where=str(path))

    def validate(self, where: str) -> None:
        if not self.encoders or set(self.encoders) - {"text", "video", "cross"}:
            raise RecipeError(f"{where}: encoders must be a non-empty subset of text/video/cross")
        if ":" not in self.model:
            raise RecipeError(f"{where}: model must be 'module:attr', got {self.model!r}")
        for name, e in self.encoders.items():
            if e.layout not in LAYOUTS:
                raise RecipeError(f"{where}: encoders.{name}.layout must be one of {LAYOUTS}")
            allowed = TEXT_SELECT if name == "text" else FRAME_SELECT
            if e.select not in allowed:
                raise RecipeError(f"{where}: encoders.{name}.select must be one of {allowed}, got {e.select!r}")
        for c in [self.call, *self.calls.values()]:
            if "function" not in c and "args" not in c:
                raise RecipeError(f"{where}: a call needs 'function' or 'args'")


def _resolve(ref: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(ref, str) and ref.startswith("="):
        return ref[1:]
    if isinstance(ref, str) and ref in inputs:
        return inputs[ref]
    if isinstance(ref, str):
        raise RecipeError(f"unknown call argument reference {ref!r} (known: {', '.join(sorted(inputs))})")
    return ref


class ByoHost(Host):
    """A user's module exposed through the host contract (see the module docstring)."""

    def __init__(self, spec: HostSpec, model: nn.Module, recipe: Recipe, tokenizer: Any = None) -> None:
        super().__init__(spec, Preprocess(num_frames=recipe.num_frames, resolution=recipe.resolution,
                                          mean=tuple(recipe.mean), std=tuple(recipe.std)))
        self.model, self.recipe = model, recipe
        self.tokenizer = load_tokenizer(tokenizer or recipe.tokenizer, f"tokenizer of recipe {recipe.name!r}",
                                        recipe.source) if "text" in recipe.encoders or "cross" in recipe.encoders \
            else None
        self.grid = tuple(recipe.grid) if recipe.grid else (recipe.resolution // recipe.patch_size,) * 2
        self._captured: dict[str, Any] = {}
        self._widths: dict[str, int] = {}
        names = {n for e in recipe.encoders.values() for n in (e.first_layer, e.pooled)}
        for n in names:
            try:
                mod = model.get_submodule(n)
            except AttributeError as err:
                raise RecipeError(f"recipe {recipe.name!r}: model has no submodule {n!r}") from err
            mod.register_forward_hook(self._hook(n))

    def _hook(self, name: str):
        def fn(module: nn.Module, args: Any, output: Any) -> None:
            # snapshot a ModelOutput now: transformers may reassign its fields after the hook fires (e.g. 5.x
            # get_*_features project pooler_output in place), which would apply a recipe's `project` twice
            self._captured[name] = output.to_tuple() if hasattr(output, "to_tuple") else output
        return fn

    # -- inputs and calls -------------------------------------------------------------------------
    def _inputs(self, batch: HostBatch) -> tuple[dict[str, Any], TokenizedText | None]:
        dev = next(self.model.parameters()).device
        v = batch.video.to(dev)
        inputs: dict[str, Any] = {"video": v, "video.flat": v.flatten(0, 1), "video.channels_first": v.transpose(1, 2),
                                  "video.mask": torch.ones(v.shape[:2], dtype=torch.long, device=dev),
                                  "frame_times": batch.frame_times.to(dev)}
        tok = None
        if self.tokenizer is not None:
            tok = tokenize_with_spans(self.tokenizer, batch.texts, self.recipe.max_words).to(dev)
            inputs.update({"text.input_ids": tok.input_ids, "text.attention_mask": tok.attention_mask.long(),
                           "text.token_type_ids": torch.zeros_like(tok.input_ids)})
        return inputs, tok

    def _run(self, call: dict[str, Any], inputs: dict[str, Any]) -> Any:
        self._captured.clear()
        if "function" in call:
            return import_attr(call["function"])(self.model, inputs)
        fn = getattr(self.model, call.get("method", "forward")) if call.get("method") else self.model
        return fn(**{k: _resolve(r, inputs) for k, r in call["args"].items()})

    def _get(self, name: str, index: int, seq_first: bool) -> Tensor:
        out = self._captured.get(name)
        if out is None:
            raise RecipeError(f"recipe {self.recipe.name!r}: submodule {name!r} did not run in the call")
        if isinstance(out, (tuple, list)):
            out = out[index]
        elif hasattr(out, "to_tuple"):
            out = out.to_tuple()[index]
        return out.transpose(0, 1) if seq_first else out

    # -- layouts ------------------------------------------------------------------------------------
    def _video_geometry(self, t: int) -> tuple[int, int]:
        """(tokens per frame slot, number of frame slots)."""
        return self.recipe.cls_tokens + self.grid[0] * self.grid[1], max(1, t // self.recipe.tubelet)

    def _video_maps(self, b: int, t: int, dev: torch.device) -> tuple[Tensor, Tensor]:
        n, slots = self._video_geometry(t)
        fidx, prc = video_token_maps(b, slots, self.grid, self.recipe.cls_tokens, dev)
        fidx = fidx * self.recipe.tubelet
        g = self.recipe.global_tokens
        if g:
            fidx = torch.cat([torch.full((b, g), -1, dtype=torch.long, device=dev), fidx], 1)
            prc = torch.cat([torch.full((b, g, 2), -1, dtype=torch.long, device=dev), prc], 1)
        return fidx, prc

    def _tokens(self, enc: str, e: EncoderRecipe, x: Tensor, b: int, t: int, tok: TokenizedText | None) -> TokenStates:
        dev = x.device
        if x.shape[0] != b:  # per-frame module output [B*T', n, d]
            x = x.reshape(b, -1, x.shape[-1])
        where = f"recipe {self.recipe.name!r} encoders.{enc} ({e.first_layer})"
        if e.layout == "text":
            if tok is None or x.shape[1] != tok.input_ids.shape[1]:
                raise RecipeError(f"{where}: {x.shape[1]} tokens, tokenizer gave "
                                  f"{None if tok is None else tok.input_ids.shape[1]}")
            return TokenStates(x, tok.attention_mask, char_spans=tok.char_spans)
        fidx, prc = self._video_maps(b, t, dev)
        if e.layout == "video":
            if x.shape[1] != fidx.shape[1]:
                raise RecipeError(f"{where}: {x.shape[1]} video tokens, geometry expects {fidx.shape[1]} "
                                  f"(global {self.recipe.global_tokens}, cls {self.recipe.cls_tokens}, "
                                  f"grid {self.grid})")
            return TokenStates(x, torch.ones(x.shape[:2], dtype=torch.bool, device=dev), frame_index=fidx,
                               patch_rc=prc, grid=self.grid)
        parts = {"video": (torch.ones_like(fidx, dtype=torch.bool), None, fidx, prc)}
        if tok is not None:
            lt = tok.input_ids.shape[1]
            parts["text"] = (tok.attention_mask, tok.char_spans, torch.full((b, lt), -1, device=dev, dtype=torch.long),
                             torch.full((b, lt, 2), -1, device=dev, dtype=torch.long))
        one = torch.full((b, 1), -1, device=dev, dtype=torch.long)
        parts["cls"] = (torch.ones(b, 1, dtype=torch.bool, device=dev), None, one, one.unsqueeze(-1).expand(b, 1, 2))
        try:
            segs = [parts[s] for s in e.segments]
        except KeyError as err:
            raise RecipeError(f"{where}: unknown segment {err.args[0]!r}") from err
        mask = torch.cat([s[0] for s in segs], 1)
        if mask.shape[1] != x.shape[1]:
            raise RecipeError(f"{where}: {x.shape[1]} tokens, segments {e.segments} give {mask.shape[1]}")
        spans = torch.cat([s[1] if s[1] is not None else torch.full((b, s[0].shape[1], 2), -1, device=dev,
                                                                     dtype=torch.long) for s in segs], 1)
        return TokenStates(x, mask, char_spans=spans, frame_index=torch.cat([s[2] for s in segs], 1),
                           patch_rc=torch.cat([s[3] for s in segs], 1), grid=self.grid)

    def _pooled(self, enc: str, e: EncoderRecipe, b: int, t: int, times: Tensor,
                tok: TokenizedText | None) -> tuple[Tensor, Tensor | None]:
        x = self._get(e.pooled, e.pooled_index, e.seq_first)
        if enc == "text":
            if x.dim() == 2:
                return x, None
            if e.select == "cls":
                return x[:, 0], None
            mask = tok.attention_mask if tok is not None and tok.attention_mask.shape[1] == x.shape[1] else \
                torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            return (last_token(x, mask) if e.select == "last" else masked_mean(x, mask)), None
        if e.select == "global":
            x = x if x.dim() == 2 else x[:, 0]
            return x.reshape(b, 1, -1), times.mean(1, keepdim=True)
        if e.select == "per_frame":
            x = x.reshape(b, -1, x.shape[-1])
        else:
            n, slots = self._video_geometry(t)
            if e.layout == "concat":  # take the video segment of the sequence
                start = sum({"text": tok.input_ids.shape[1] if tok is not None else 0, "cls": 1}.get(s, 0)
                            for s in e.segments[: e.segments.index("video")])
                x = x.reshape(b, -1, x.shape[-1])[:, start: start + self.recipe.global_tokens + n * slots]
            x = x.reshape(b, -1, x.shape[-1])[:, self.recipe.global_tokens:].reshape(b, slots, n, -1)
            x = x[:, :, 0] if e.select == "frame_cls" else x.mean(2)
        slots = x.shape[1]
        idx = torch.div(torch.arange(slots, device=times.device) * t, slots, rounding_mode="floor")
        return x, times[:, idx]

    # -- contract -----------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        inputs, tok = self._inputs(batch)
        b, t = batch.video.shape[:2]
        self._run(self.recipe.call, inputs)
        out = HostOutputs()
        for enc, e in self.recipe.encoders.items():
            fl = self._tokens(enc, e, self._get(e.first_layer, e.output_index, e.seq_first), b, t, tok)
            pooled, times = self._pooled(enc, e, b, t, inputs["frame_times"], tok)
            self._widths[enc], self._widths["_first_" + enc] = pooled.shape[-1], fl.states.shape[-1]
            setattr(out, enc, EncoderOutput(fl, pooled, frame_times=times))
        if with_losses and self.recipe.losses:
            out.losses.update(import_attr(self.recipe.losses)(self.model, self._captured, inputs))
        return out

    def _ensure_widths(self) -> None:
        if not self._widths:
            b = HostBatch(torch.zeros(1, self.preprocess.num_frames, 3, self.preprocess.resolution,
                                      self.preprocess.resolution), torch.zeros(1, self.preprocess.num_frames), ["a"])
            with torch.no_grad():
                self.posttrain_outputs(b, with_losses=False)

    def encoder_widths(self) -> dict[str, int]:
        self._ensure_widths()
        return {k: v for k, v in self._widths.items() if not k.startswith("_")}

    def first_layer_widths(self) -> dict[str, int]:
        self._ensure_widths()
        return {k[7:]: v for k, v in self._widths.items() if k.startswith("_first_")}

    def _embed(self, enc: str, batch: HostBatch) -> Tensor:
        e = self.recipe.encoders.get(enc)
        if e is None or enc not in self.recipe.calls:
            raise CapabilityError(f"recipe {self.recipe.name!r} declares no {enc} embedding call (calls.{enc})")
        inputs, tok = self._inputs(batch)
        self._run(self.recipe.calls[enc], inputs)
        pooled, _ = self._pooled(enc, e, batch.video.shape[0], batch.video.shape[1], inputs["frame_times"], tok)
        if pooled.dim() == 3:
            pooled = pooled.mean(1)
        if e.project:
            pooled = self.model.get_submodule(e.project)(pooled)
        return nn.functional.normalize(pooled, dim=-1)

    @property
    def embed_dim(self) -> int:
        enc = "video" if "video" in self.recipe.calls else next(iter(self.recipe.calls), "video")
        dummy = HostBatch(torch.zeros(1, self.preprocess.num_frames, 3, self.preprocess.resolution,
                                      self.preprocess.resolution), torch.zeros(1, self.preprocess.num_frames), ["a"])
        with torch.no_grad():
            return self._embed(enc, dummy).shape[-1]

    def encode_text(self, texts: list[str]) -> Tensor:
        n = self.preprocess.num_frames
        r = self.preprocess.resolution
        return self._embed("text", HostBatch(torch.zeros(len(texts), n, 3, r, r), torch.zeros(len(texts), n), texts))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        times = frame_times if frame_times is not None else torch.zeros(video.shape[:2])
        return self._embed("video", HostBatch(video, times, [""] * video.shape[0]))


def load_user_checkpoint(model: nn.Module, path: Path, prefixes: list[str], strict: bool, what: str) -> None:
    state = load_state_dict(path, what=what)
    for p in prefixes:
        state = {k[len(p):] if k.startswith(p) else k: v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise CheckpointError(f"{path}: {what} does not match the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")


def build_byo(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, recipe: Any, model: Any = None,
              tokenizer: Any = None, strict: bool = True, **model_kwargs: Any) -> ByoHost:
    """Wrap a module: ``recipe`` is a :class:`Recipe`, a dict or a YAML path; ``model`` an ``nn.Module``
    (else built from ``recipe.model`` with ``recipe.model_kwargs`` updated by ``model_kwargs``)."""
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_yaml(recipe) if isinstance(recipe, (str, Path)) else Recipe.from_dict(recipe)
    if model is None:
        try:
            factory = import_attr(recipe.model)
        except (ImportError, AttributeError) as err:
            raise RecipeError(f"recipe {recipe.name!r}: cannot import {recipe.model!r} ({err}); put the official code "
                              f"({recipe.source or 'see the recipe'}) on PYTHONPATH") from err
        model = factory(**{**recipe.model_kwargs, **model_kwargs})
    if checkpoint is not None:
        load_user_checkpoint(model, checkpoint, recipe.strip_prefixes, strict, f"checkpoint of {recipe.name!r}")
    return ByoHost(spec, model, recipe, tokenizer)


def byo_spec(recipe: Recipe, name: str | None = None, **meta: Any) -> HostSpec:
    """A :class:`HostSpec` whose Table-10 flags and capabilities come from the recipe."""
    return HostSpec(name=name or recipe.name, has_text="text" in recipe.encoders, has_video="video" in recipe.encoders,
                    has_cross="cross" in recipe.encoders, capabilities=frozenset(recipe.capabilities),
                    factory="hosts.byo:build_byo", status="recipe", notes=recipe.notes, **meta)


def create_byo_host(recipe: Any, model: nn.Module | None = None, checkpoint: str | Path | None = None,
                    tokenizer: Any = None, **model_kwargs: Any) -> ByoHost:
    """One-call wrapper for a module the user already has (no registration needed)."""
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_yaml(recipe) if isinstance(recipe, (str, Path)) else Recipe.from_dict(recipe)
    return build_byo(byo_spec(recipe), None, Path(checkpoint) if checkpoint is not None else None, recipe=recipe,
                     model=model, tokenizer=tokenizer, **model_kwargs)
