"""Messages a new user meets (issue 35, case 10): each says what is wrong with the file given."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bokehlite.export.calibration import MIN_PHOTOS, photo_files
from bokehlite.model.checkpoint import CheckpointError, read_weights_file


def test_a_photo_given_as_a_checkpoint_is_named_as_a_photo_without_pytorchs_unsafe_advice(tmp_path):
    photo = tmp_path / "holiday.jpg"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CheckpointError) as caught:
        read_weights_file(photo, "checkpoint")
    message = str(caught.value)
    assert "it is a JPEG photo" in message and "weights_only" not in message and "\n" not in message


def test_calibration_counts_photos_by_their_bytes_not_their_names(tmp_path):
    for i in range(MIN_PHOTOS):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), np.full((8, 8, 3), i, np.uint8))
    (tmp_path / "notes.jpg").write_text("not a photo")
    assert len(photo_files(tmp_path)) == MIN_PHOTOS
    (tmp_path / "p0.png").unlink()
    with pytest.raises(ValueError, match=f"has {MIN_PHOTOS - 1}$"):
        photo_files(tmp_path)
