"""Shared fixtures of the feature tests: real fountain-P11 features, computed once per session."""

from __future__ import annotations

import pytest

from geomvision.features import FeatureOptions, extract_features
from geomvision.imageio import read_image


@pytest.fixture(scope="session")
def fountain_images(fountain):
    return {name: read_image(fountain.image_dir / name) for name in fountain.image_names[:2]}


@pytest.fixture(scope="session")
def fountain_features(fountain, fountain_images):
    """Default-option features of fountain-P11 0000 and 0001 at full resolution."""
    opts = FeatureOptions()
    return {name: extract_features(img, opts) for name, img in fountain_images.items()}
