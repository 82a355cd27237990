"""File formats: COLMAP models, PLY, BAL, g2o; dataset helpers."""

from .datasets import GroundTruthScene, data_root, load_strecha_scene
from .bal import read_bal, write_bal
from .colmap import read_model, write_model
from .g2o import read_g2o, write_g2o
from .ply import read_ply, write_ply
