"""lmms-eval integration: serve a (Finsta-post-trained) host to lmms-eval, and export our tasks as lmms-eval tasks.

lmms-eval cannot share this project's lock (it pins ``av<16`` and needs ``filelock<4``), so it lives in its own
environment made by ``scripts/setup_lmms.sh`` (``.venv-lmms``). This package is importable without lmms-eval:

* :mod:`harness.lmms.adapter`  the host server (no lmms-eval import): builds a host from a checkpoint or from a
  post-training run of our results store, decodes videos with the host's preprocessing, greedy generation and
  answer log-likelihoods, batched;
* :mod:`harness.lmms.export`   writes one of our tasks (its official-format files, read by our own loader) as an
  lmms-eval task folder for ``--include_path``: a JSONL of docs, a YAML in the task's paper protocol, a utils.py;
* :mod:`harness.lmms.task_utils` the functions those YAMLs name (``doc_to_visual``, ``process_results``, ...);
* :mod:`harness.lmms.model`    the ``lmms_eval.api.model.lmms`` subclass (imports lmms-eval; only in its env).

:func:`manifest` is the entry point of the ``lmms_eval.models`` group (``pyproject.toml``): lmms-eval calls it to
register the model id ``finsta_host``.
"""

from __future__ import annotations

MODEL_ID = "finsta_host"


def manifest():  # -> lmms_eval.models.registry_v2.ModelManifest (only importable in the lmms-eval environment)
    """lmms-eval's registration payload: model id ``finsta_host`` -> :class:`harness.lmms.model.FinstaHostLMM`."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path="harness.lmms.model.FinstaHostLMM",
                         aliases=("finsta",))
