"""lmms-eval model class ``finsta_host`` (import only inside the lmms-eval environment, ``.venv-lmms``).

    lmms-eval --model finsta_host --model_args run=results/runs/<posttrain run> \
        --tasks finsta_msvd_qa --include_path lmms_tasks/ --output_path out/ --log_samples

Requests are answered by :class:`harness.lmms.adapter.HostServer`; this class only unpacks lmms-eval's request
tuples (``(context, gen_kwargs | target, doc_to_visual, doc_id, task, split)``).
"""

from __future__ import annotations

from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from harness.lmms.adapter import HostServer, ServeError, ServeOptions, doc_protocol
from tasks.types import VideoProtocol


def _one_video(visuals: Any, where: str) -> str:
    """The single video path a doc's ``doc_to_visual`` gave (our exported tasks give exactly one)."""
    items = visuals if isinstance(visuals, (list, tuple)) else [visuals]
    items = [v for v in items if v is not None]
    if len(items) != 1 or not isinstance(items[0], str):
        raise ServeError(f"{where}: finsta_host takes one video path per request, got {items!r}")
    return items[0]


class FinstaHostLMM(lmms):
    """Any generative host of ours (Video-LLaVA, ...) as an lmms-eval model; see :class:`ServeOptions`."""

    def __init__(self, **model_args: Any) -> None:
        super().__init__()
        model_args.pop("batch_size_per_gpu", None)
        self.server = HostServer.from_options(ServeOptions.parse(model_args))
        self.batch_size_per_gpu = self.server.opts.batch_size

    def _docs(self, requests: list[Instance]) -> list[tuple[Any, ...]]:
        return [req.args for req in requests]

    def _video(self, doc_to_visual: Any, doc_id: int, task: str, split: str) -> tuple[str, VideoProtocol | None]:
        doc = self.task_dict[task][split][doc_id]
        return _one_video(doc_to_visual(doc), f"task {task} split {split} doc {doc_id}"), doc_protocol(doc)

    def generate_until(self, requests: list[Instance]) -> list[str]:
        args = self._docs(requests)
        videos, protocols = zip(*[self._video(dv, i, t, s) for _, _, dv, i, t, s in args]) if args else ((), ())
        prompts = [ctx for ctx, *_ in args]
        lengths = {int((g or {}).get("max_new_tokens", self.server.opts.max_new_tokens)) for _, g, *_ in args}
        out: list[str] = [""] * len(args)
        for n_new in sorted(lengths):  # one generation length per call
            idx = [k for k, (_, g, *_) in enumerate(args)
                   if int((g or {}).get("max_new_tokens", self.server.opts.max_new_tokens)) == n_new]
            answers = self.server.generate([videos[k] for k in idx], [prompts[k] for k in idx], n_new,
                                           [protocols[k] for k in idx])
            for k, a in zip(idx, answers):
                out[k] = a
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        args = self._docs(requests)
        videos, protocols, prompts, answers = [], [], [], []
        for ctx, target, dv, i, t, s in args:
            video, protocol = self._video(dv, i, t, s)
            videos.append(video)
            protocols.append(protocol)
            prompts.append(ctx)
            answer = target if isinstance(target, str) else target(self.task_dict[t][s][i])
            answers.append(str(answer).strip())  # lmms-eval prefixes choices with its target delimiter " "
        return self.server.loglikelihood(videos, prompts, answers, protocols)

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("finsta_host answers single-round requests only (the paper's tasks)")
