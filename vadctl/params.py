"""scikit-learn's parameter convention, shared by featurizers and models: the keyword arguments of
`__init__` are the parameters, stored unchanged under the same names."""

from __future__ import annotations

import inspect


def param_names(cls: type) -> list[str]:
    """Names of the parameters `cls.__init__` declares (none when it inherits object's)."""
    if cls.__init__ is object.__init__:
        return []
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self" and p.kind in named]
