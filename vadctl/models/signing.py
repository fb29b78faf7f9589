"""Signed model files: an HMAC-SHA256 over a model file's digest, with a key only its owners hold.

A model file's sha256 catches corruption, not tampering: anyone who can edit the file can
recompute it. With a key configured, `fit` also writes an HMAC of that digest, and loading a model
to score with it refuses files that are unsigned or signed with another key. The key comes from
`$VADCTL_MODEL_KEY` (the key itself), else from the file named by `key_file` in the `[models]`
table of the config file (`$VADCTL_CONFIG`, default `~/.config/vadctl/config.toml`; a relative
path starts at the config file's folder). No key configured: nothing is signed or checked.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from pathlib import Path

from vadctl.backbones.weights import config_path
from vadctl.errors import UsageError

KEY_ENV = "VADCTL_MODEL_KEY"
SIGNATURE_KEY = "vadctl_hmac_sha256"


def model_key() -> bytes | None:
    """The signing key, or None when none is configured; a configured but unusable key is an error."""
    value = os.environ.get(KEY_ENV)
    if value is not None:
        if not value.strip():
            raise UsageError(f"${KEY_ENV} is set but empty; unset it or give a key")
        return value.encode()

    config = config_path()
    if not config.is_file():
        return None
    try:
        data = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{config}: cannot read config file: {error}") from None
    table = data.get("models", {})
    if not isinstance(table, dict) or "key_file" not in table:
        return None
    if not isinstance(table["key_file"], str) or not table["key_file"].strip():
        raise UsageError(f'{config}: [models] key_file must be a path, e.g. key_file = "/etc/vadctl/model.key"')
    path = config.parent / Path(table["key_file"]).expanduser()
    try:
        key = path.read_bytes().strip()
    except OSError as error:
        raise UsageError(
            f"{path}: cannot read the model key file ([models] key_file in {config}): {error.strerror or error}"
        ) from None
    if not key:
        raise UsageError(f"{path}: the model key file ([models] key_file in {config}) is empty")
    return key


def signature(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def check(path: Path, key: bytes | None, digest: str, signed: str | None) -> str | None:
    """Why a model file must not be used under `key` (None: fine, or no key configured)."""
    if key is None:
        return None
    if signed is None:
        return f"unsigned, and a model key is configured (${KEY_ENV} or [models] key_file): fit it with the key"
    if not hmac.compare_digest(signed, signature(key, digest)):
        return "signed with another key, or modified after signing: refusing it"
    return None
