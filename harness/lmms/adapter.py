"""The host server behind the lmms-eval model class (importable without lmms-eval).

A :class:`HostServer` owns one host in eval mode and answers the two request kinds lmms-eval sends:

* ``generate``: greedy answers ``list[str]`` to prompts about videos (open-ended QA, captioning), the host's
  own decoding (:meth:`hosts.base.Host.generate`);
* ``loglikelihood``: ``(sum log p(answer | video, prompt), is_greedy)`` per request
  (:meth:`hosts.base.Host.answer_loglikelihood`), which lmms-eval's ``multiple_choice`` tasks rank.

Videos are decoded with our decoder (:func:`tasks.video.load_clip`) in the host's protocol (its frame count and
input size, uniform sampling, centre crop) and normalised by the host's own preprocessing (``host.preprocess``),
so a score here and in ``python -m harness run`` come from the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from torch import Tensor

from harness.errors import HarnessError
from hosts.base import Host
from hosts.registry import create_host
from tasks.types import VideoProtocol
from tasks.video import VideoDecodeError, load_clip

R = TypeVar("R")


class ServeError(HarnessError):
    """A model argument, run folder or video the server cannot use (message names it)."""


@dataclass(frozen=True)
class ServeOptions:
    """What lmms-eval's ``--model_args`` may set (``key=value`` pairs).

    Attributes:
        host: registry name (``video_llava``); not needed with ``run``.
        checkpoint: the host's weights (file or directory in the official layout).
        run: a post-training run folder of our results store (``results/runs/<run_id>``): the host is built from
            the run's resolved config and loaded from its ``host.safetensors`` (Finsta removed).
        random_init: build the architecture without weights (smoke tests only; says so in every output).
        device: ``cpu`` | ``cuda`` | ``auto``.
        batch_size: videos per forward pass.
        num_frames / resolution: override the host's protocol (default: the host's ``preprocess``).
        max_new_tokens: default generation length when a request does not set one.
        host_options: keyword arguments of the host factory, given as ``host.<key>=<value>`` model args (values
            read as YAML scalars: ``host.num_frames=8``); a run folder's own options come first.
    """

    host: str | None = None
    checkpoint: str | None = None
    run: str | None = None
    random_init: bool = False
    device: str = "auto"
    batch_size: int = 1
    num_frames: int | None = None
    resolution: int | None = None
    max_new_tokens: int = 32
    host_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, args: dict[str, Any]) -> ServeOptions:
        """Typed options from lmms-eval's parsed ``--model_args`` (strings); unknown keys are an error."""
        host_options = {k[len("host."):]: yaml.safe_load(str(v)) for k, v in args.items() if k.startswith("host.")}
        args = {k: v for k, v in args.items() if not k.startswith("host.")}
        known = set(cls.__dataclass_fields__) - {"host_options"}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ServeError(f"unknown --model_args key(s) {unknown}; known: {sorted(known)} and host.<option>")
        out: dict[str, Any] = {}
        for key, value in args.items():
            kind = cls.__dataclass_fields__[key].type
            if value is None:
                out[key] = None
            elif "bool" in str(kind):
                out[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif "int" in str(kind):
                try:
                    out[key] = int(value)
                except ValueError as err:
                    raise ServeError(f"--model_args {key}={value!r}: expected an integer") from err
            else:
                out[key] = str(value)
        opts = cls(**out, host_options=host_options)
        if opts.batch_size < 1 or opts.max_new_tokens < 1:
            raise ServeError("--model_args batch_size and max_new_tokens must be >= 1")
        if not opts.host and not opts.run:
            raise ServeError("--model_args needs host=<name> (with checkpoint=<path>) or run=<results run folder>")
        return opts


def _run_config(run: Path) -> dict[str, Any]:
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise ServeError(f"{run}: not a run folder of the results store (no config.yaml)")
    try:
        cfg = yaml.safe_load(cfg_path.read_text())
    except yaml.YAMLError as err:
        raise ServeError(f"{cfg_path}: unreadable YAML ({err})") from err
    if not isinstance(cfg, dict) or not isinstance(cfg.get("host"), dict) or not cfg["host"].get("name"):
        raise ServeError(f"{cfg_path}: field host.name missing")
    return cfg


def doc_protocol(doc: dict[str, Any]) -> VideoProtocol | None:
    """The video protocol an exported doc carries (``doc["protocol"]``), None for other docs."""
    spec = doc.get("protocol")
    if spec is None:
        return None
    try:
        return VideoProtocol(**spec)
    except (TypeError, ValueError) as err:
        raise ServeError(f"doc {doc.get('id')!r}: bad field 'protocol' {spec!r} ({err})") from err


def build_host(opts: ServeOptions) -> Host:
    """The host ``opts`` names, in eval mode; a run folder's post-trained weights loaded over it."""
    if opts.run:
        run = Path(opts.run)
        weights = run / "host.safetensors"
        if not weights.is_file():
            raise ServeError(f"{run}: no host.safetensors (only post-training runs save the post-trained host)")
        cfg = _run_config(run)
        name = opts.host or cfg["host"]["name"]
        checkpoint = opts.checkpoint or cfg["host"].get("checkpoint")
        options = {**(cfg["host"].get("options") or {}), **opts.host_options}
        host = create_host(name, checkpoint, random_init=checkpoint is None, **options)
        host.load(weights)
    else:
        host = create_host(str(opts.host), opts.checkpoint, random_init=opts.random_init, **opts.host_options)
    device = opts.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ServeError(f"--model_args device={device}: CUDA is not available on this machine")
    return host.to(device).eval()


class HostServer:
    """One host answering lmms-eval requests (see the module docstring)."""

    def __init__(self, host: Host, opts: ServeOptions) -> None:
        self.host = host
        self.opts = opts
        pre = host.preprocess
        self.protocol = VideoProtocol(num_frames=opts.num_frames or pre.num_frames,
                                      resolution=opts.resolution or pre.resolution, sampling="uniform",
                                      crop="center")

    @classmethod
    def from_options(cls, opts: ServeOptions) -> HostServer:
        return cls(build_host(opts), opts)

    @property
    def device(self) -> torch.device:
        return next(self.host.parameters()).device

    def video(self, path: str | Path, protocol: VideoProtocol | None = None) -> Tensor:
        """Decoded, preprocessed clip ``[T, 3, R, R]`` float (``R`` = the host's input size), in ``protocol`` (an
        exported doc carries its task's protocol, so the frames equal those ``harness run`` evaluates) or, for
        lmms-eval's own tasks, the host's (its frame count, uniform sampling)."""
        p = Path(path)
        if not p.is_file():
            raise ServeError(f"video {p} does not exist (check the task's video root)")
        try:
            frames, _ = load_clip(p, protocol or self.protocol)
        except VideoDecodeError as err:
            raise ServeError(f"video {p}: {err}") from err
        return self.host.preprocess(frames)

    def _videos(self, paths: Sequence[str | Path], protocols: Sequence[VideoProtocol | None] | None) -> Tensor:
        protocols = protocols or [None] * len(paths)
        return torch.stack([self.video(p, q) for p, q in zip(paths, protocols)]).to(self.device)

    def _map(self, n: int, fn: Callable[[int, int], list[R]]) -> list[R]:
        out: list[R] = []
        for start in range(0, n, self.opts.batch_size):
            out.extend(fn(start, min(n, start + self.opts.batch_size)))
        return out

    @torch.no_grad()
    def generate(self, videos: Sequence[str | Path], prompts: Sequence[str], max_new_tokens: int | None = None,
                 protocols: Sequence[VideoProtocol | None] | None = None) -> list[str]:
        """Greedy answers, one per (video, prompt); an empty prompt asks for a caption (the host's own caption
        instruction, as ``harness run`` does for captioning tasks)."""
        if len(videos) != len(prompts):
            raise ValueError(f"{len(videos)} videos for {len(prompts)} prompts")
        n_new = max_new_tokens or self.opts.max_new_tokens

        def one(a: int, b: int) -> list[str]:
            batch = list(prompts[a:b])
            if any(batch) and not all(batch):
                raise ServeError("a batch mixes captioning requests (empty prompt) with questions")
            return self.host.generate(self._videos(videos[a:b], protocols and protocols[a:b]),
                                      batch if any(batch) else None,
                                      max_new_tokens=n_new)

        return self._map(len(videos), one)

    @torch.no_grad()
    def loglikelihood(self, videos: Sequence[str | Path], prompts: Sequence[str], answers: Sequence[str],
                      protocols: Sequence[VideoProtocol | None] | None = None) -> list[tuple[float, bool]]:
        """``(sum of the answer tokens' log-probabilities, every answer token is the greedy one)`` per request."""
        if not len(videos) == len(prompts) == len(answers):
            raise ValueError("videos, prompts and answers must have equal lengths")

        def one(a: int, b: int) -> list[tuple[float, bool]]:
            lp, greedy = self.host.answer_loglikelihood(self._videos(videos[a:b], protocols and protocols[a:b]),
                                                        list(prompts[a:b]),
                                                        list(answers[a:b]))
            return [(float(x), bool(g)) for x, g in zip(lp.tolist(), greedy.tolist())]

        return self._map(len(videos), one)
