"""Host models: the paper's host VLMs as native modules (each file registers its spec), the tiny synthetic
host family, and the bring-your-own-model adapter. ``create_host("clip4clip.msrvtt_ft", checkpoint=...)`` is
the single entry point (``hosts.registry``); it returns the host with its matching preprocessing
(``host.preprocess``). This package ``__init__`` imports nothing, so ``hosts.spec`` stays torch-free."""
