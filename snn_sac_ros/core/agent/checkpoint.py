"""Checkpoints: one ``.npz`` file with every weight array and a JSON metadata record.

The metadata says what the weights are for (arm, joint names, observation and action contracts, neuron
counts, LIF constants, SAC config, format version, the train command and seed), so that loading can
refuse a checkpoint made for another robot or encoding with an error naming what differs. Saving writes
a temporary file in the same folder and renames it over the target (``os.replace``), so a crash mid-save
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snn_sac_ros.core.arm.specs import PRESETS, ArmSpec, spec_from_record
from snn_sac_ros.core.contracts import ActionContract, ObservationContract

FORMAT_VERSION = 1
_META_KEY = "__metadata__"
DEFAULT_CONTROL_HZ = 50.0  # the env step of checkpoints that record none


def trained_control_hz(metadata: dict) -> float:
    """The env step rate a checkpoint's metadata says it was trained at [Hz]: the rate its action was held for,
    and the step its discount is per."""
    return float(metadata.get("control_hz", DEFAULT_CONTROL_HZ))


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: corrupt, wrong format version, or made for another set-up."""


@dataclass
class Checkpoint:
    """Weights by name (``actor/W0`` ...) and the metadata dict."""

    arrays: dict[str, np.ndarray]
    metadata: dict

    @property
    def observation_contract(self) -> ObservationContract:
        return ObservationContract.from_dict(self.metadata["observation_contract"])

    @property
    def action_contract(self) -> ActionContract:
        return ActionContract.from_dict(self.metadata["action_contract"])

    @property
    def control_hz(self) -> float:
        return trained_control_hz(self.metadata)

    def arm_spec(self, urdf: str | None = None) -> ArmSpec:
        """The arm it was trained on (``metadata["arm_spec"]``, or the preset of a checkpoint from before that
        record); ``urdf``: the same URDF moved elsewhere. Refuses another arm with a ``ValueError``."""
        record = self.metadata.get("arm_spec")
        if record is None:
            if self.metadata["arm"] not in PRESETS:
                raise CheckpointError(f"the checkpoint records no URDF for its arm {self.metadata['arm']!r}")
            record = {"preset": self.metadata["arm"]}
        return spec_from_record(record, urdf)


def save_checkpoint(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict) -> Path:
    """Write ``arrays`` and ``metadata`` to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, **metadata}
    buffer = io.BytesIO()
    np.savez(buffer, **{_META_KEY: np.array(json.dumps(meta, sort_keys=True))},
             **{k: np.asarray(v) for k, v in arrays.items()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the partial temporary files that saves to ``path`` left when their process was killed.

    A crash during :func:`save_checkpoint` never touches ``path`` itself, but leaves its
    ``.<name>.*.tmp`` beside it (as large as a checkpoint): after many crashes they would fill the disk.
    Call it only where no other process saves to the same ``path`` at the same time (a controller at
    start-up, before its first save). Returns the files removed.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else ():
        try:
            tmp.unlink()
        except OSError:
            continue
        removed.append(tmp)
    return removed


def _differences(name: str, saved: dict, expected: dict) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(expected)):
        a, b = saved.get(key, "<missing>"), expected.get(key, "<missing>")
        if _normal(a) != _normal(b):
            out.append(f"{name}.{key}: checkpoint has {a!r}, expected {b!r}")
    return out


def _normal(value: object) -> object:
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, float):
        return round(value, 9)
    return value


def load_checkpoint(path: str | Path, expected_observation: ObservationContract | None = None,
                    expected_action: ActionContract | None = None) -> Checkpoint:
    """Read a checkpoint; refuse a corrupt file or one whose contracts differ from the expected ones.

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file and what is wrong, and
    ``FileNotFoundError`` when the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
        metadata = json.loads(str(arrays.pop(_META_KEY)))
    except KeyError as error:
        raise CheckpointError(f"{path}: not an snn_sac_ros checkpoint (no metadata record)") from error
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({type(error).__name__}: {error})") from error
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r}, this code reads {FORMAT_VERSION}")
    for key in ("observation_contract", "action_contract", "hidden", "arm"):
        if key not in metadata:
            raise CheckpointError(f"{path}: checkpoint metadata lacks {key!r}")
    problems = []
    if expected_observation is not None:
        problems += _differences("observation", metadata["observation_contract"], expected_observation.to_dict())
    if expected_action is not None:
        problems += _differences("action", metadata["action_contract"], expected_action.to_dict())
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not match this robot set-up (arm "
                              f"{metadata['arm']!r}): " + "; ".join(problems))
    return Checkpoint(arrays, metadata)
