"""Checkpoint folders: ``model.safetensors`` (weights), ``config.json`` (ModelConfig), ``vocabulary.json``
and ``meta.json`` (training command, seed, time, peak memory, metrics). No pickle: loading uses safetensors.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vrgv.errors import ConfigError
from vrgv.training.config import ModelConfig
from vrgv.vocab import Vocabulary

FILES = ("model.safetensors", "config.json", "vocabulary.json", "meta.json")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(model: "VRGVModel", vocab: Vocabulary, folder: str | os.PathLike,  # noqa: F821
                    meta: dict[str, Any] | None = None) -> Path:
    """Write the four checkpoint files into ``folder`` (created if needed); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(vocab) != model.config.vocab_size:
        raise ConfigError(
            f"checkpoint {str(folder)!r}: vocabulary has {len(vocab)} tokens but the model was built for "
            f"{model.config.vocab_size}"
        )
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / f".model.safetensors.{os.getpid()}.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "vrgv": "checkpoint-1"})
    os.replace(tmp, folder / "model.safetensors")
    _write_json(folder / "config.json", model.config.to_dict())
    _write_json(folder / "vocabulary.json", vocab.to_dict())
    _write_json(folder / "meta.json", meta or {})
    return folder


def load_checkpoint(folder: str | os.PathLike) -> tuple["VRGVModel", Vocabulary, dict[str, Any]]:  # noqa: F821
    """Read a checkpoint folder, validate config/vocabulary/weights agree; the model is in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vrgv.training.model import VRGVModel

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"checkpoint {str(folder)!r} is not a folder; train one with `vrgv train --out FOLDER`")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"checkpoint {str(folder)!r} lacks {missing}; it must hold {list(FILES)}")
    try:
        config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        vocab = Vocabulary.from_dict(json.loads((folder / "vocabulary.json").read_text(encoding="utf-8")))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"checkpoint {str(folder)!r} has an invalid JSON file ({exc})") from None
    if len(vocab) != config.vocab_size:
        raise ConfigError(
            f"checkpoint {str(folder)!r}: vocabulary.json has {len(vocab)} tokens, config.json says "
            f"vocab_size={config.vocab_size}"
        )
    try:
        state = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"checkpoint {str(folder)!r}: model.safetensors is unreadable ({exc})") from None
    model = VRGVModel(config)
    expected = model.state_dict()
    bad = sorted(k for k in expected if k not in state or tuple(state[k].shape) != tuple(expected[k].shape))
    extra = sorted(set(state) - set(expected))
    if bad or extra:
        raise ConfigError(
            f"checkpoint {str(folder)!r}: weights do not match config.json (missing/mis-shaped {bad[:5]}, "
            f"unexpected {extra[:5]}); the config and model.safetensors come from different runs"
        )
    model.load_state_dict(state)
    model.eval()
    return model, vocab, meta
