"""File formats: COLMAP models, PLY, BAL, g2o; dataset helpers."""

from .datasets import GroundTruthScene, data_root, load_strecha_scene
from .bal import read_bal, write_bal
