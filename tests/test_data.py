import gzip
import shutil

import numpy as np
import pytest
import torch

from gradwatch.errors import ConfigError, DataError
from gradwatch.lab import load_dataset
from gradwatch.lab import mnist as mnist_io

# Published class counts of the MNIST t10k test set (LeCun et al.), digits 0..9.
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_digits_is_the_embedded_default():
    d = load_dataset()
    assert d.name == "digits"
    assert d.x_train.shape[1] == 64 and d.n_classes == 10
    assert len(d.x_train) + len(d.x_test) == 1797  # scikit-learn's bundled set
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_digits_unflattened_keeps_image_shape():
    d = load_dataset("digits", flatten=False)
    assert d.x_train.shape[1:] == (8, 8) and d.input_shape == (8, 8)


def test_standardize_uses_training_statistics():
    d = load_dataset("digits", scale="standardize")
    x = d.x_train.double()
    varying = x.std(0) > 0
    torch.testing.assert_close(x.mean(0), torch.zeros(64, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, unbiased=False)[varying], torch.ones(int(varying.sum()), dtype=torch.float64),
                               atol=1e-4, rtol=0)


def test_split_is_seeded_and_stratified():
    a, b, c = (load_dataset("digits", seed=s) for s in (1, 1, 2))
    assert torch.equal(a.y_test, b.y_test) and not torch.equal(a.y_test, c.y_test)
    counts = torch.bincount(a.y_test, minlength=10).float()
    assert counts.min() >= 0.9 * counts.mean()  # stratified: each class near its share


@pytest.mark.parametrize("kwargs, param", [({"name": "nope"}, "dataset"), ({"scale": "big"}, "scale"),
                                           ({"test_fraction": 1.5}, "test_fraction")],
                         ids=["dataset", "scale", "test_fraction"])
def test_bad_arguments(kwargs, param):
    with pytest.raises(ConfigError, match=param):
        load_dataset(**kwargs)


def test_mnist1d_is_deterministic_and_balanced():
    a, b = load_dataset("mnist1d"), load_dataset("mnist1d")
    assert torch.equal(a.x_train, b.x_train)
    assert a.x_train.shape == (4000, 40) and a.x_test.shape == (1000, 40)
    counts = torch.bincount(torch.cat([a.y_train, a.y_test]))
    assert counts.tolist() == [500] * 10


def test_mnist1d_classes_are_separable_but_not_trivially():
    """A linear classifier does clearly better than chance yet far from perfect (the paper: ~32 %)."""
    from sklearn.linear_model import LogisticRegression

    d = load_dataset("mnist1d", scale="none")
    acc = LogisticRegression(max_iter=2000).fit(d.x_train, d.y_train).score(d.x_test, d.y_test)
    assert 0.2 < acc < 0.6


# --- real MNIST -----------------------------------------------------------------------------------------------

def test_mnist_t10k_shapes_and_label_counts(mnist_dir):
    d = load_dataset("mnist", data_dir=mnist_dir, test_fraction=0.2, download=False)
    assert d.x_train.shape == (8000, 784) and d.x_test.shape == (2000, 784)
    assert d.input_shape == (28, 28)
    counts = torch.bincount(torch.cat([d.y_train, d.y_test]), minlength=10)
    assert counts.tolist() == T10K_COUNTS


def test_mnist_idx_parse_matches_raw_bytes(mnist_dir):
    """The IDX parser against a direct read of the bytes: 16-byte header, then 28×28 pixels per image."""
    images = mnist_io.read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = mnist_io.read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    raw = gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz").read()
    assert int.from_bytes(raw[:4], "big") == 2051 and int.from_bytes(raw[4:8], "big") == 10_000
    np.testing.assert_array_equal(images[123].ravel(), np.frombuffer(raw[16 + 123 * 784: 16 + 124 * 784], np.uint8))
    assert labels[:3].tolist() == [7, 2, 1]  # the well-known first three test digits


def test_mnist_unflattened_images(mnist_dir):
    d = load_dataset("mnist", data_dir=mnist_dir, flatten=False, download=False)
    assert d.x_train.shape[1:] == (28, 28) and float(d.x_train.max()) == 1.0


def test_mnist_from_environment_variable(mnist_dir, monkeypatch):
    monkeypatch.setenv("GRADWATCH_DATA", str(mnist_dir.parent))  # the data root: its mnist/ subfolder is used
    assert len(load_dataset("mnist", download=False).x_test) == 2000


def test_mnist_md5_mismatch_is_reported(mnist_dir, tmp_path):
    for name in mnist_io.TEST:
        shutil.copy(mnist_dir / name, tmp_path / name)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz has md5 [0-9a-f]{32}, expected ec29112d"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_mnist_missing_files_say_what_to_put_where(tmp_path, no_download):
    with pytest.raises(DataError, match=rf"put t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz .* in {tmp_path}"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_is_never_downloaded_unless_allowed(tmp_path, monkeypatch):
    """Without --download or GRADWATCH_DOWNLOAD=1 no mirror is contacted, and the error says how to allow it."""
    contacted = []

    def offline(url, timeout):
        contacted.append(url)
        raise OSError("offline")

    monkeypatch.setattr(mnist_io.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"put t10k-images.* or allow the download into .* with --download or "
                                        r"GRADWATCH_DOWNLOAD=1"):
        load_dataset("mnist", data_dir=tmp_path)
    assert contacted == []
    monkeypatch.setenv("GRADWATCH_DOWNLOAD", "1")
    with pytest.raises(DataError, match="no mirror answered"):
        load_dataset("mnist", data_dir=tmp_path)
    assert len(contacted) >= 1  # the opt-in makes it try


def test_mnist_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_mnist_download_writes_verified_files_into_cache(mnist_dir, monkeypatch):
    """Download path with a fake mirror that serves the real files (no network in tests)."""
    import io

    def fake_urlopen(url, timeout):
        name = url.rsplit("/", 1)[1]
        if name not in mnist_io.TEST:
            raise OSError("not served")
        return io.BytesIO((mnist_dir / name).read_bytes())

    monkeypatch.setattr(mnist_io.urllib.request, "urlopen", fake_urlopen)
    d = load_dataset("mnist", download=True)
    assert len(d.x_train) == 8000
    assert sorted(p.name for p in mnist_io.cache_dir().iterdir()) == sorted(mnist_io.TEST)
