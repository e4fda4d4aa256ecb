import gzip
import hashlib

import numpy as np
import pytest

from tempered.data.idx import PINNED, IdxError, PinnedFile, load_verified, parse_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_parse_roundtrip_images_and_labels():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 7], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images)), images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)


def test_bad_magic_number_is_named():
    data = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    data[0] = 0x1F
    with pytest.raises(IdxError, match="bad magic number"):
        parse_idx(bytes(data), "x.idx")


def test_non_ubyte_element_type_is_refused():
    data = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    data[2] = 0x0D  # float
    with pytest.raises(IdxError, match="not unsigned byte"):
        parse_idx(bytes(data))


@pytest.mark.parametrize("cut", [1, 100])
def test_truncated_file_names_expected_and_actual_size(cut):
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    with pytest.raises(IdxError, match=r"truncated: shape \(10, 28, 28\) needs 7856 bytes, file has"):
        parse_idx(data[:-cut], "f")


def test_trailing_bytes_are_refused():
    with pytest.raises(IdxError, match="trailing bytes"):
        parse_idx(idx_bytes(np.zeros((3,), np.uint8)) + b"\0")


def test_wrong_digest_names_file_expected_and_actual(tmp_path):
    data = idx_bytes(np.zeros((4,), np.uint8))
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(data)
    pin = PinnedFile("train-labels-idx1-ubyte", "0" * 64, (4,))
    with pytest.raises(IdxError) as err:
        load_verified(path, pin)
    message = str(err.value)
    assert str(path) in message and "0" * 64 in message and hashlib.sha256(data).hexdigest() in message


def test_gzip_and_raw_give_the_same_digest(tmp_path):
    labels = np.array([1, 2, 3, 4], np.uint8)
    data = idx_bytes(labels)
    pin = PinnedFile("train-labels-idx1-ubyte", hashlib.sha256(data).hexdigest(), (4,))
    (tmp_path / "raw").write_bytes(data)
    (tmp_path / "gz").write_bytes(gzip.compress(data))
    for name in ("raw", "gz"):
        array, digest = load_verified(tmp_path / name, pin)
        np.testing.assert_array_equal(array, labels)
        assert digest == pin.sha256


def test_truncated_gzip_is_an_idx_error(tmp_path):
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((100,), np.uint8)))[:-10])
    with pytest.raises(IdxError, match="corrupt or truncated gzip"):
        load_verified(path, PinnedFile("f", "0" * 64, (100,)))


def test_real_mnist_matches_pins(mnist_arrays):
    assert mnist_arrays["x_train"].shape == PINNED["mnist"]["train-images-idx3-ubyte"].shape
    assert mnist_arrays["y_test"].shape == (10_000,)
    assert set(np.unique(mnist_arrays["y_train"])) == set(range(10))
    # The well-known class count of MNIST's training set: 5923 zeros.
    assert int((mnist_arrays["y_train"] == 0).sum()) == 5923
