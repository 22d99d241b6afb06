"""archcalc.torch.data: loading, fitting to the spec's input, splits, normalisation, augmentation."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archcalc.errors import SpecError  # noqa: E402
from archcalc.torch.data import SOURCES, TASKS, add_noise, augment, check_augment, load_dataset  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "classify", (1, 8, 8), seed=0)


def test_names():
    assert SOURCES == ("digits", "synthetic", "sample-images")
    assert TASKS == ("classify", "binary", "regress", "denoise")


def test_digits_split_sizes_and_stratified(digits):
    d = digits
    assert sum(d.sizes.values()) == 1797
    assert d.sizes == {"train": 1257, "val": 270, "test": 270}
    assert d.classes == [str(i) for i in range(10)]
    assert d.y_train.dtype == torch.int64 and d.x_train.dtype == torch.float32
    # the test split is cut from everything, then validation from the rest: each keeps the class
    # proportions of what it was cut from to within one example per class
    rest = torch.cat([d.y_train, d.y_val])
    for y, whole in ((d.y_test, torch.cat([rest, d.y_test])), (d.y_val, rest), (d.y_train, rest)):
        expected = torch.bincount(whole, minlength=10) * len(y) / len(whole)
        assert (torch.bincount(y, minlength=10) - expected).abs().max() <= 1
    # the splits are disjoint and cover every example
    idx = torch.cat(list(d.indices.values()))
    assert sorted(idx.tolist()) == list(range(1797))


def test_normalised_with_train_statistics_only(digits):
    d = digits
    assert d.mean.shape == d.std.shape == (1, 1, 1)
    assert abs(d.x_train.mean().item()) < 1e-5 and abs(d.x_train.std(correction=0).item() - 1) < 1e-4
    # val/test are normalised with train's statistics, not their own
    assert d.x_val.mean().item() != pytest.approx(0, abs=1e-6)
    assert d.x_test.mean().item() != pytest.approx(0, abs=1e-6)
    raw = torch.cat([d.x_train, d.x_val, d.x_test]) * d.std + d.mean
    assert raw.min().item() == pytest.approx(0, abs=1e-4) and raw.max().item() == pytest.approx(16, abs=1e-3)
    s = d.stats()
    assert s["shape"] == [1, 8, 8] and len(s["mean"]) == 1 and s["task"] == "classify"
    assert s["mean"][0] == pytest.approx(d.mean.item())
    import json
    json.dumps(s)  # saved with the run
    # the saved statistics reproduce the same normalisation
    again = load_dataset("digits", "classify", (1, 8, 8), stats=s)
    assert torch.equal(again.x_val, d.x_val)


def test_reshape_to_vector_and_binary():
    d = load_dataset("digits", "binary", (64,))
    assert d.x_train.shape == (1257, 64) and d.mean.shape == d.std.shape == (64,)
    assert (d.std > 0).all()  # blank corner pixels: std 1, not a division by zero
    assert torch.isfinite(d.x_train).all()
    assert d.y_train.dtype == torch.float32 and d.y_train.shape == (1257,)
    assert set(d.y_train.unique().tolist()) == {0.0, 1.0} and d.classes == ["even", "odd"]
    assert load_dataset("digits", "classify", (1, 8, 8)).x_train.shape == (1257, 1, 8, 8)


def test_wrong_shape_and_bad_requests():
    with pytest.raises(SpecError) as e:
        load_dataset("digits", "classify", (3, 32, 32))
    msg = str(e.value)
    assert "1x8x8 (64 values)" in msg and "[3, 32, 32]" in msg and "[1, 8, 8] or [64]" in msg
    for args, words in [(("digits", "regress", (64,)), "regression targets"),
                        (("digitz", "classify", (64,)), "did you mean 'digits'"),
                        (("digits", "clasify", (64,)), "did you mean 'classify'"),
                        (("sample-images", "classify", (1, 8, 8)), "denoise"),
                        (("missing.npz", "classify", (64,)), "does not exist")]:
        with pytest.raises(SpecError, match=words):
            load_dataset(*args)
    with pytest.raises(SpecError, match="10 classes"):
        load_dataset("digits", "classify", (64,), num_classes=5)
    with pytest.raises(SpecError, match="fold 3"):
        load_dataset("digits", "classify", (64,), folds=3, fold=3)


def test_folds_partition_non_test_data_and_keep_test_fixed(digits):
    runs = [load_dataset("digits", "classify", (1, 8, 8), folds=4, fold=k) for k in range(4)]
    test = runs[0].indices["test"]
    assert torch.equal(test, digits.indices["test"])  # the same held-out test set as without folds
    rest = set(range(1797)) - set(test.tolist())
    vals = [set(r.indices["val"].tolist()) for r in runs]
    assert set().union(*vals) == rest and sum(map(len, vals)) == len(rest)  # a partition
    for r, v in zip(runs, vals):
        assert torch.equal(r.indices["test"], test)
        assert set(r.indices["train"].tolist()) == rest - v
        counts = torch.bincount(r.y_val, minlength=10)  # stratified folds
        assert counts.max() - counts.min() <= 3


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(5, 2, (200, 3, 4)).astype(np.float64), rng.normal(size=(200, 2))
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_dataset(str(tmp_path / "d.npz"), "regress", (3, 4), val_fraction=0.2, test_fraction=0.1)
    assert d.sizes == {"train": 140, "val": 40, "test": 20}
    assert d.x_train.dtype == torch.float32 and d.y_train.shape == (140, 2)
    assert torch.allclose(d.y_train, torch.as_tensor(y[d.indices["train"].numpy()], dtype=torch.float32))
    raw = d.x_train * d.std + d.mean
    assert torch.allclose(raw, torch.as_tensor(x[d.indices["train"].numpy()], dtype=torch.float32), atol=1e-4)
    # string class labels are named and indexed
    np.savez(tmp_path / "c.npz", x=x, y=np.array(["cat", "dog"] * 100))
    c = load_dataset(str(tmp_path / "c.npz"), "classify", (12,))
    assert c.classes == ["cat", "dog"] and c.y_train.dtype == torch.int64
    np.savez(tmp_path / "bad.npz", inputs=x)
    with pytest.raises(SpecError, match="needs x and y"):
        load_dataset(str(tmp_path / "bad.npz"), "classify", (3, 4))


def test_image_folder(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls, level in (("class_a", 40), ("class_b", 200)):
        (tmp_path / cls).mkdir()
        for i in range(10):
            a = np.clip(rng.normal(level, 10, (12, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / cls / f"{i}.png")
    d = load_dataset(str(tmp_path), "classify", (1, 8, 8), val_fraction=0.2, test_fraction=0.2, seed=1)
    assert d.classes == ["class_a", "class_b"] and d.x_train.shape == (12, 1, 8, 8)
    assert sum(d.sizes.values()) == 20
    # dark images are class 0, bright ones class 1, after resizing and grayscale conversion
    bright = (d.x_train.mean((1, 2, 3)) > 0).long()
    assert torch.equal(bright, d.y_train)
    rgb = load_dataset(str(tmp_path), "binary", (3, 6, 5))
    assert rgb.x_train.shape[1:] == (3, 6, 5) and rgb.mean.shape == (3, 1, 1)
    with pytest.raises(SpecError, match=r"\[1, H, W\]"):
        load_dataset(str(tmp_path), "classify", (64,))


def test_synthetic_shapes_dtypes_and_seed():
    a = load_dataset("synthetic", "classify", (3, 16, 16), num_classes=7, synthetic_size=100, seed=3)
    b = load_dataset("synthetic", "classify", (3, 16, 16), num_classes=7, synthetic_size=100, seed=3)
    c = load_dataset("synthetic", "classify", (3, 16, 16), num_classes=7, synthetic_size=100, seed=4)
    assert sum(a.sizes.values()) == 100 and a.x_train.shape[1:] == (3, 16, 16)
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    assert int(a.y_train.max()) < 7 and len(a.classes) == 7
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)
    r = load_dataset("synthetic", "regress", (10,), target_shape=(3,), synthetic_size=50)
    assert r.y_train.shape[1:] == (3,) and r.y_train.dtype == torch.float32 and r.classes is None


def test_tokens_synthetic():
    t = load_dataset("synthetic", "classify", (12,), tokens=True, vocab=30, num_classes=2, synthetic_size=64)
    assert t.x_train.dtype == torch.int64 and t.x_train.shape[1:] == (12,)
    assert 0 <= int(t.x_train.min()) and int(t.x_train.max()) < 30
    assert t.mean.tolist() == [0.0] and t.std.tolist() == [1.0]
    with pytest.raises(SpecError, match="token ids"):
        load_dataset("digits", "classify", (64,), tokens=True)


@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 32, 32)])
def test_sample_image_patches(shape):
    d = load_dataset("sample-images", "denoise", shape, noise_std=0.3)
    assert d.x_train.shape[1:] == shape and d.mean.shape == (shape[0], 1, 1)
    # two 427x640 photos, stride 16: 25 x 39 patches each
    assert sum(d.sizes.values()) == 2 * 25 * 39
    assert d.classes is None and d.noise_std == 0.3


def test_denoise_val_is_noisy_and_targets_clean():
    d = load_dataset("digits", "denoise", (1, 8, 8), noise_std=0.5)
    assert d.x_train is d.y_train  # training noise is added per step, fresh each epoch
    noise = d.x_val - d.y_val
    assert noise.std().item() == pytest.approx(0.5, rel=0.1)
    assert abs(d.y_val.mean().item()) < 0.2  # the clean, normalised image
    again = load_dataset("digits", "denoise", (1, 8, 8), noise_std=0.5)
    assert torch.equal(again.x_val, d.x_val) and torch.equal(again.x_test, d.x_test)  # fixed noise
    moved = d.to("cpu")
    assert moved.x_train is moved.y_train
    g = torch.Generator().manual_seed(0)
    noisy = add_noise(d.x_train, 0.5, g)
    assert noisy.shape == d.x_train.shape and not torch.equal(noisy, d.x_train)
    assert add_noise(d.x_train, 0.0) is d.x_train


def test_crop_help_says_what_augment_does():
    # the help once said "crops after padding" (a shift): the code zooms in (test_augment measures it)
    import typer

    from archcalc.cli import app

    train = typer.main.get_command(app).commands["train"]
    crop = next(p for p in train.params if "--crop" in p.opts)
    assert "zoom-in" in crop.help and "resized back" in crop.help and "padding" not in crop.help


def test_augment():
    x = torch.randn(16, 3, 8, 8)
    assert augment(x) is x  # identity when off
    for kw in ({"flip": True}, {"shift": 2}, {"crop": 1}, {"flip": True, "shift": 1, "crop": 2}):
        y = augment(x, generator=torch.Generator().manual_seed(0), **kw)
        assert y.shape == x.shape and y.device == x.device and y.dtype == x.dtype
    # flips: each example is itself or its mirror image, and flipping twice with the same
    # random draws gives the input back
    y = augment(x, flip=True, generator=torch.Generator().manual_seed(0))
    mirrored = (y == x.flip(-1)).flatten(1).all(1)
    assert ((y == x).flatten(1).all(1) | mirrored).all() and 0 < mirrored.sum() < 16
    z = augment(y, flip=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, x)
    # shift moves whole pixels in with zeros; a 1-D signal [C, L] shifts too
    ramp = torch.arange(1, 11.0).view(1, 1, 10).expand(4, 2, 10)
    s = augment(ramp, shift=3, generator=torch.Generator().manual_seed(1))
    for row in s[:, 0]:
        kept = row[row != 0]
        assert torch.equal(kept, torch.arange(kept[0].item(), kept[0].item() + len(kept)))
        assert len(kept) >= 7
    # crop: a zoom that keeps a constant image constant
    ones = torch.ones(4, 1, 8, 8)
    assert torch.allclose(augment(ones, crop=2), ones)
    # crop is a zoom-in, as --crop's help and docs/train.md say, not padding then cropping: on a ramp
    # (pixel value = its column) output column i reads input column ox + (i + 1/2)(W - 2c)/W - 1/2,
    # a window W - 2c wide at a whole offset ox in [0, 2c], stretched to W (slope (W - 2c)/W, not 1)
    w, c = 10, 2
    ramp = torch.arange(w, dtype=torch.float64).expand(8, 1, w, w).clone()
    z = augment(ramp, crop=c, generator=torch.Generator().manual_seed(3))
    i = torch.arange(1, w - 1, dtype=torch.float64)  # the rim may be clamped at the image's edge
    for row in z[:, 0, w // 2, 1:w - 1]:
        ox = row[0] - (1.5 * (w - 2 * c) / w - 0.5)
        assert abs(ox - ox.round()) < 1e-9 and 0 <= round(ox.item()) <= 2 * c
        assert torch.allclose(row, ox.round() + (i + 0.5) * (w - 2 * c) / w - 0.5)
    with pytest.raises(SpecError, match="images"):
        check_augment((64,), flip=True)
    with pytest.raises(SpecError, match="nothing"):
        augment(x, crop=4)


def test_torchvision_never_downloads():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(SpecError, match="not installed"):
            load_dataset("torchvision:MNIST", "classify", (1, 28, 28))
    except RuntimeError:  # a wheel built for another torch ("operator torchvision::nms does not exist")
        with pytest.raises(SpecError, match="installed but does not load"):
            load_dataset("torchvision:MNIST", "classify", (1, 28, 28))
    else:  # a root that certainly holds no dataset
        with pytest.raises(SpecError, match="never downloads"):
            load_dataset("torchvision:MNIST:/nonexistent-archcalc-root", "classify", (1, 28, 28))
