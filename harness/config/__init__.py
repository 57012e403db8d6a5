"""Layered run configuration (omegaconf).

Layers, later wins: ``defaults.yaml`` -> ``presets/<preset>.yaml`` -> ``hosts/<host>.yaml`` ->
``tasks/<family>.yaml`` -> ``tasks/<task>.yaml`` -> ``modes/<mode>.yaml`` -> experiment file ->
command-line ``key=value`` overrides. The merged config is *struct*: an unknown key is a
:class:`~harness.errors.ConfigError` with "did you mean" suggestions, and a value of the wrong type
(``finetune.epochs=abc``) is refused. The open maps ``finsta``, ``host.options``, ``task.options`` and
``data.roots`` take any key (``finsta`` keys are checked against ``FinstaConfig`` when a run is planned).
"""

from harness.config.loader import (
    CONFIG_DIR,
    IDENTITY_EXCLUDE,
    check_ranges,
    identity_view,
    load_config,
    parse_overrides,
    to_container,
)

__all__ = ["CONFIG_DIR", "IDENTITY_EXCLUDE", "check_ranges",
           "identity_view", "load_config", "parse_overrides", "to_container"]
