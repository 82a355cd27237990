"""Geometry core: rotations, rigid transforms, camera models, projection, epipolar geometry."""

from .camera import CAMERA_MODELS, Camera
from .epipolar import (
    epipolar_lines1,
    epipolar_lines2,
    epipoles,
    essential_from_fundamental,
    essential_from_pose,
    fundamental_from_essential,
    fundamental_from_pose,
    homography_transfer_sq_errors,
    sampson_sq_errors,
    symmetric_epipolar_sq_errors,
    symmetric_transfer_sq_errors,
)
from .projection import project_points, rays_from_pixels, reprojection_sq_errors, unproject_points
from .rigid import Rigid3, camera_center
from .rotation import (
    hat,
    is_rotation,
    project_to_rotation,
    quat_wxyz_from_rotmat,
    quat_xyzw_from_rotmat,
    random_rotation,
    rotation_angle_deg,
    rotation_error_deg,
    rotmat_from_quat_wxyz,
    rotmat_from_quat_xyzw,
    so3_exp,
    so3_log,
    vee,
)
