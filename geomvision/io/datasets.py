"""Where the shared datasets live, and a loader for Strecha-style scenes with ground truth."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3


def data_root() -> Path | None:
    """The datasets folder: ``$GEOMVISION_DATA`` when set, else ``../shared/datasets`` next to
    the source checkout (or the current directory). None when neither exists."""
    env = os.environ.get("GEOMVISION_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2]
    for base in (here, Path.cwd()):
        cand = base.parent / "shared" / "datasets"
        if cand.is_dir():
            return cand
    return None


@dataclass
class GroundTruthScene:
    """Images of a scene with ground-truth intrinsics and poses (``x_cam = R X + t``)."""

    name: str
    image_dir: Path
    image_names: list[str]
    cameras: dict[str, Camera]
    cams_from_world: dict[str, Rigid3]

    @property
    def K(self) -> np.ndarray:
        return self.cameras[self.image_names[0]].K

    def image_paths(self) -> list[Path]:
        return [self.image_dir / n for n in self.image_names]


def load_strecha_scene(scene_dir: str | os.PathLike) -> GroundTruthScene:
    """Read a scene folder with ``images/``, ``K.txt`` and ``gt_cameras.json`` (Strecha layout)."""
    scene_dir = Path(scene_dir)
    gt_path = scene_dir / "gt_cameras.json"
    if not gt_path.is_file():
        raise FileNotFoundError(f"{gt_path} not found: a Strecha scene folder holds images/, K.txt and gt_cameras.json")
    try:
        data = json.loads(gt_path.read_text())
        cams, poses = {}, {}
        for name, c in sorted(data["cameras"].items()):
            cams[name] = Camera.from_K(np.array(c["K"], dtype=float), int(c["width"]), int(c["height"]))
            poses[name] = Rigid3(np.array(c["R"], dtype=float), np.array(c["t"], dtype=float), check=False)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{gt_path}: malformed ground truth ({exc})") from None
    names = sorted(cams)
    return GroundTruthScene(scene_dir.name, scene_dir / "images", names, cams, poses)
