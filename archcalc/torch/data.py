"""Training data for `archcalc train`: load, fit to the spec's input, split, normalise, augment.

Everything ends up as whole tensors (no DataLoader): the lecture-sized datasets fit in memory, and
on a GPU they can live on the device, so shuffling, noise and augmentation run there without a
per-step host transfer.
"""
from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from archcalc.errors import SpecError, did_you_mean
from archcalc.reader.yaml_source import kind_of

# plus: a path to an .npz file, an image folder, or "torchvision:NAME[:ROOT]"
SOURCES = ("digits", "synthetic", "sample-images")
TASKS = ("classify", "binary", "regress", "denoise")
SOURCE_HELP = ("digits, synthetic, sample-images, a .npz file with arrays x and y, a folder of images "
               "(one sub-folder per class) or torchvision:NAME[:ROOT]")
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MAX_PATCHES = 20_000  # sample-images with tiny patches would give ~100k+; a seeded subset is plenty
#: Size limits, checked before anything is decoded or allocated (docs/train.md, "Safety guarantees"):
#: the examples of a dataset as float32 (an .npz file's arrays as declared in their .npy headers, an
#: image folder's decoded images, a synthetic set), and the pixels of one image (PNG and JPEG headers
#: state the size, so a 20000 x 20000 "decompression bomb" of a few hundred bytes is refused unread).
MAX_DATA_BYTES = 2 * 2**30
MAX_IMAGE_PIXELS = 50_000_000


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str
    classes: list[str] | None  # class names for classify/binary, else None
    mean: torch.Tensor  # per-channel statistics of the raw training inputs ([C,1,1] images, [F] vectors)
    std: torch.Tensor
    source: str
    noise_std: float = 0.0  # denoise: std of the noise the training loop adds (in normalised units)
    indices: dict = field(default_factory=dict)  # split -> int64 positions in the source's examples

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def sizes(self) -> dict:
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}

    def to(self, device) -> "Dataset":
        moved, done = {}, {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                # denoise shares x_train and y_train: keep one copy on the device too
                moved[f.name] = done.setdefault(id(v), v.to(device))
        return replace(self, **moved)

    def stats(self) -> dict:
        """What a run saves so that later data (evaluate, inference) is normalised the same way;
        `load_dataset(..., stats=this)` reuses it."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "shape": list(self.input_shape), "source": self.source, "task": self.task,
                "classes": self.classes, "noise_std": self.noise_std, "sizes": self.sizes}


def load_dataset(source: str, task: str, input_shape: tuple, *, seed: int = 0,
                 val_fraction: float = 0.15, test_fraction: float = 0.15, folds: int | None = None,
                 fold: int = 0, num_classes: int | None = None, synthetic_size: int = 1024,
                 noise_std: float = 0.5, tokens: bool = False, target_shape: tuple | None = None,
                 vocab: int | None = None, stats: dict | None = None) -> Dataset:
    """Load `source` for `task`, shaped [N, *input_shape], split into train/val/test and normalised
    with the training split's statistics (or with `stats` saved by an earlier run).

    - classify: y int64 class indices [N]; binary: y float32 0/1 [N] (BCE-with-logits target; the
      training loop reshapes it to the net's output); regress: y float32 as stored;
      denoise: x = y = the clean image for training (noise is added per step with `add_noise`),
      while x_val/x_test carry fixed seeded noise so evaluation is deterministic.
    - `folds=K`: the test split is held out first (the same for every fold), the rest is cut into K
      (stratified for classify/binary) folds and fold `fold` is the validation split.
    - `target_shape` (synthetic regress, default (1,)) and `vocab` (synthetic token ids are drawn from
      0..vocab-1; pass the smallest embedding table, default 2 like `build.example_input`).
    """
    if task not in TASKS:
        raise SpecError(f"unknown task '{task}'{did_you_mean(task, TASKS)}: "
                        f"expected one of {', '.join(TASKS)}")
    input_shape = tuple(int(d) for d in input_shape)
    _check_fractions(val_fraction, test_fraction, folds, fold)
    if tokens and task == "denoise":
        raise SpecError("the denoise task adds Gaussian noise to real-valued inputs; "
                        "this spec's input is token ids")
    if tokens and source in ("digits", "sample-images") or tokens and Path(source).is_dir():
        raise SpecError(f"'{source}' holds images but the spec's input is token ids; "
                        "use synthetic or an .npz file with integer ids in x")

    x, y, classes, test = _load_raw(source, task, input_shape, seed=seed, synthetic_size=synthetic_size,
                                    num_classes=num_classes, tokens=tokens, target_shape=target_shape,
                                    vocab=vocab)
    what = _describe(source)
    x = _fit(x, input_shape, what)
    y, classes = _labels(y, task, classes, what, num_classes)
    if test is not None:  # a dataset with its own test split (torchvision): keep it as the test set
        xt = _fit(test[0], input_shape, what)
        yt, _ = _labels(test[1], task, classes, what, num_classes)
    if tokens:
        _check_ids(x, vocab, what)

    strat = y if task in ("classify", "binary") else None
    everything = np.arange(len(x))
    if test is None:
        rest, test_idx = _split(everything, test_fraction, strat, seed)
    else:
        rest, test_idx = everything, np.arange(len(xt))
    if folds:
        train_idx, val_idx = _fold(rest, folds, fold, None if strat is None else strat[rest], seed)
    else:
        share = val_fraction / (1 - (0 if test is not None else test_fraction))
        train_idx, val_idx = _split(rest, share, None if strat is None else strat[rest], seed)
    if len(train_idx) == 0:
        raise SpecError(f"{what} has {len(x)} examples: too few to leave any for training")

    dtype = torch.int64 if tokens else torch.float32
    xs = [torch.as_tensor(x[train_idx], dtype=dtype), torch.as_tensor(x[val_idx], dtype=dtype),
          torch.as_tensor(xt[test_idx] if test is not None else x[test_idx], dtype=dtype)]
    if y is not None:
        ys = [y[train_idx], y[val_idx], yt[test_idx] if test is not None else y[test_idx]]

    if tokens:  # ids are categories, not magnitudes: nothing to normalise
        mean, std = torch.zeros(1), torch.ones(1)
    elif stats is not None:
        mean, std = _stats_from(stats, input_shape)
    else:
        mean, std = _channel_stats(xs[0])
    if not tokens:
        xs = [(v - mean) / std for v in xs]

    noise = 0.0
    if task == "denoise":
        noise = float(noise_std)
        gen = torch.Generator().manual_seed(seed)  # fixed noise: val/test losses comparable across epochs
        ys = xs
        xs = [xs[0], add_noise(xs[1], noise, gen), add_noise(xs[2], noise, gen)]
    else:
        ydt = torch.int64 if task == "classify" else torch.float32
        ys = [torch.as_tensor(v, dtype=ydt) for v in ys]

    idx = {k: torch.as_tensor(v, dtype=torch.int64) for k, v in zip(("train", "val", "test"),
                                                                        (train_idx, val_idx, test_idx))}
    return Dataset(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], task=task, classes=classes,
                   mean=mean, std=std, source=source, noise_std=noise, indices=idx)


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x plus Gaussian noise of standard deviation `std`, drawn on x's device (a generator must be
    on that device too)."""
    if not std:
        return x
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def check_augment(input_shape: tuple, *, flip: bool = False, shift: int = 0, crop: int = 0) -> None:
    """SpecError if the augmentation does not apply to examples of `input_shape` (call it before
    training, so a bad flag fails at once rather than at the first step)."""
    shape = tuple(input_shape)
    if shift < 0 or crop < 0:
        raise SpecError("augmentation shift and crop are pixel counts and cannot be negative")
    if (flip or crop) and len(shape) != 3:
        raise SpecError(f"flips and crops are for images [C, H, W]; the spec's input is {list(shape)}")
    if shift and len(shape) not in (2, 3):
        raise SpecError(f"shifts are for images [C, H, W] or signals [C, L]; "
                        f"the spec's input is {list(shape)}")
    if shift and shift >= min(shape[1:]):
        size = "x".join(map(str, shape[1:]))
        raise SpecError(f"a shift of up to {shift} pixels can move a {size} input entirely out of view; "
                        f"it must be less than {min(shape[1:])}")
    if crop and 2 * crop >= min(shape[1:]):
        raise SpecError(f"a crop of {crop} pixels from each side leaves nothing of a "
                        f"{shape[1]}x{shape[2]} image")


def augment(x: torch.Tensor, *, flip: bool = False, shift: int = 0, crop: int = 0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly augment a batch x [N, C, H, W] (or [N, C, L] for shift) on x's own device.

    Each example independently:
    - flip: mirrored left-right (last dim) with probability 1/2;
    - shift: translated by integers dy, dx uniform in [-shift, shift] (dy only with H), the pixels
      moved in are zeros (the inputs are normalised, so 0 is the mean);
    - crop: a window of (H-2*crop) x (W-2*crop) at a random integer offset is cut out and resized
      back to H x W (bilinear): a random zoom-in of up to 2*crop pixels. (Padding the window back
      with zeros would just be a shift, so the crop gives scale augmentation instead.)
    Returns x itself when all are off. `generator`, if given, must live on x's device.
    """
    if not (flip or shift or crop):
        return x
    check_augment(tuple(x.shape[1:]), flip=flip, shift=shift, crop=crop)
    n, dev = len(x), x.device
    if flip:
        mask = torch.rand(n, generator=generator, device=dev) < 0.5
        x = torch.where(mask.view(n, *[1] * (x.dim() - 1)), x.flip(-1), x)
    if shift:
        # pad with zeros, then each example gathers its own window: no per-example Python loop
        pad = F.pad(x, (shift, shift) * (x.dim() - 2))
        for d in range(2, x.dim()):
            size = x.shape[d]
            off = torch.randint(0, 2 * shift + 1, (n,), generator=generator, device=dev)
            pos = off.view(n, 1) + torch.arange(size, device=dev)  # [N, size] rows read from `pad`
            view = [n] + [1] * (x.dim() - 1)
            view[d] = size
            out_shape = list(pad.shape)
            out_shape[d] = size
            pad = pad.gather(d, pos.view(view).expand(out_shape))
        x = pad
    if crop:
        h, w = x.shape[-2:]
        oy, ox = (torch.randint(0, 2 * crop + 1, (n,), generator=generator, device=dev) for _ in range(2))
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        # window in grid_sample's [-1, 1] coordinates (align_corners=False): scale = window/size,
        # centre = 2 * (offset - crop) / size
        theta[:, 0, 0], theta[:, 1, 1] = (w - 2 * crop) / w, (h - 2 * crop) / h
        theta[:, 0, 2], theta[:, 1, 2] = 2 * (ox - crop).to(x.dtype) / w, 2 * (oy - crop).to(x.dtype) / h
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # the window lies inside the image, but bilinear taps at its rim reach half a pixel past the
        # last pixel centre: "border" repeats the edge there instead of mixing in zeros
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x


# --- loading -------------------------------------------------------------------------------------

def _describe(source: str) -> str:
    return source if source in SOURCES else f"'{source}'"


def _load_raw(source, task, input_shape, *, seed, synthetic_size, num_classes, tokens, target_shape, vocab):
    """(x [N, ...] array, y array or None, class names or None, (x_test, y_test) or None)."""
    if source == "digits":
        if task == "regress":
            raise SpecError("digits has class labels, not regression targets: use --task classify, binary "
                            "or denoise, or an .npz file with real-valued y for regress")
        from sklearn.datasets import load_digits
        d = load_digits()
        x, y = d.images.astype(np.float32)[:, None], d.target.astype(np.int64)
        if task == "binary":  # a two-class question the digits can answer: is the digit odd?
            return x, y % 2, ["even", "odd"], None
        return x, y, [str(c) for c in d.target_names], None
    if source == "synthetic":
        x, y, classes = _synthetic(task, input_shape, seed, synthetic_size, num_classes, tokens,
                                   target_shape, vocab)
        return x, y, classes, None
    if source == "sample-images":
        if task != "denoise":
            raise SpecError("sample-images are two unlabelled photos: use them with --task denoise")
        return _sample_patches(input_shape, seed), None, None, None
    if source.startswith("torchvision:"):
        return _torchvision(source, input_shape)
    path = Path(source)
    try:
        info = os.stat(path)  # follows links: data may well live elsewhere
    except (OSError, ValueError):
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        return (*_image_folder(path, task, input_shape), None)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise SpecError(f"data '{source}' is {kind_of(info.st_mode)}, not a file: give a .npz file or a folder of images")
    if info is not None:
        return (*_npz(path, task), None)
    if path.suffix == ".npz":
        raise SpecError(f"data file '{source}' does not exist")
    raise SpecError(f"unknown data source '{source}'{did_you_mean(source, SOURCES)}: expected {SOURCE_HELP}")


def _check_bytes(count: int, per_example: int, what: str, itemsize: int = 4) -> None:
    total = count * per_example * itemsize
    if total > MAX_DATA_BYTES:
        raise SpecError(f"{what}: {count:,} examples of {per_example:,} values would take {total / 2**30:,.1f} GiB; "
                        f"archcalc train holds at most {MAX_DATA_BYTES / 2**30:g} GiB of data in memory")


def _synthetic(task, shape, seed, size, num_classes, tokens, target_shape, vocab):
    rng = np.random.default_rng(seed)
    if size < 1:
        raise SpecError(f"the synthetic dataset needs at least one example, not {size}")
    _check_bytes(size, math.prod(shape) + math.prod(target_shape or (1,)), "--data synthetic", 8 if tokens else 4)
    x = (rng.integers(0, vocab or 2, (size, *shape)) if tokens
         else rng.standard_normal((size, *shape), dtype=np.float32))
    if task == "classify":
        k = num_classes or 10
        return x, rng.integers(0, k, size), [str(i) for i in range(k)]
    if task == "binary":
        return x, rng.integers(0, 2, size), ["0", "1"]
    if task == "regress":
        return x, rng.standard_normal((size, *(target_shape or (1,))), dtype=np.float32), None
    return x, None, None


def _open_regular(path):
    """`path` opened for reading if it is a regular file (O_NONBLOCK: a FIFO put in its place does not
    block the open, and is then refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SpecError(f"'{path}' is {kind_of(mode)}, not a file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


# what each array may hold: numbers for inputs, also text for class labels (named classes)
_KINDS_OK = {"x": "biuf", "y": "biufUS"}


def _npz_member(zf, name, path):
    """Array `name` of an open .npz (zip) file, its .npy header checked before any data is read: the
    shape it declares must fit MAX_DATA_BYTES, and the dtype must be plain numbers (or text labels)."""
    with zf.open(name) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        key = name.removesuffix(".npy")
        if dtype.kind not in _KINDS_OK[key]:
            what = {"c": "complex numbers", "O": "Python objects", "V": "records", "M": "dates", "m": "time spans",
                    "U": "text", "S": "bytes"}.get(dtype.kind, str(dtype))
            need = "real numbers" if key == "x" else "real numbers or class names"
            raise SpecError(f"{key} in '{path}' holds {what} ({dtype}); it must hold {need}")
        if not shape:
            raise SpecError(f"{key} in '{path}' is a single value; it needs one row per example")
        count = math.prod(shape)
        if count * dtype.itemsize > MAX_DATA_BYTES or count * 4 > MAX_DATA_BYTES:
            raise SpecError(f"{key} in '{path}' declares shape {list(shape)} ({count:,} values of {dtype}), more than "
                            f"the {MAX_DATA_BYTES / 2**30:g} GiB that archcalc train holds in memory")
        info = zf.getinfo(name)
        if info.file_size < count * dtype.itemsize:
            raise SpecError(f"{key} in '{path}' declares {count * dtype.itemsize:,} bytes of data but holds "
                            f"{info.file_size:,}: the file is truncated or damaged")
        return _read_npy(stream, shape, fortran, dtype, key, path)


def _read_npy(stream, shape, fortran, dtype, key, path):
    """The data after a .npy header, read straight into its array (never more than it declares)."""
    count = math.prod(shape)
    array = np.empty(count, dtype)
    view, done = memoryview(array.view(np.uint8)), 0
    while done < len(view):
        got = stream.readinto(view[done:])
        if not got:
            raise SpecError(f"{key} in '{path}' ends after {done:,} of its {len(view):,} bytes: the file is truncated")
        done += got
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def _npz(path, task):
    import zipfile
    import zlib

    need = ("x",) if task == "denoise" else ("x", "y")
    try:
        with _open_regular(path) as handle, zipfile.ZipFile(handle) as zf:
            names = set(zf.namelist())
            have = sorted(n.removesuffix(".npy") for n in names)
            missing = [k for k in need if f"{k}.npy" not in names]
            if missing:
                raise SpecError(f"'{path}' has arrays {have or 'none'} but needs {' and '.join(need)} "
                                f"(x: the inputs, one per row; y: the {task} targets)")
            x = _npz_member(zf, "x.npy", path)
            y = _npz_member(zf, "y.npy", path) if "y.npy" in names and task != "denoise" else None
    except SpecError:
        raise
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error) as e:
        why = " ".join(str(e).split())[:200]
        raise SpecError(f"cannot read '{path}' as an .npz file (a zip of .npy arrays x and y): {why}") from None
    if y is not None and len(y) != len(x):
        raise SpecError(f"'{path}' has {len(x)} inputs in x but {len(y)} targets in y")
    _check_finite(x, "x", path)
    if y is not None and y.dtype.kind in "f" and task == "regress":
        _check_finite(y, "y", path)
    return x, y, None


def _check_finite(a, key, path):
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
        raise SpecError(f"{key} in '{path}' holds NaN or infinity (example {bad}); training data must be finite")


def _image_channels(shape, what):
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise SpecError(f"{what} holds images but the spec's input is {list(shape)}; "
                        "use an input of [1, H, W] (grayscale) or [3, H, W] (RGB)")
    return shape[0]


def _image_folder(path, task, shape):
    c = _image_channels(shape, f"'{path}'")
    if task == "regress":
        raise SpecError("an image folder gives class labels, not regression targets: "
                        "use an .npz file for regress")
    files = lambda d: sorted(p for p in _entries(d) if p.suffix.lower() in IMAGE_EXTS and _is_image_file(p))
    subdirs = sorted(d for d in _entries(path) if d.is_dir() and files(d))
    items = [(p, i) for i, d in enumerate(subdirs) for p in files(d)]
    if task == "denoise":
        items += [(p, -1) for p in files(path)]  # denoise needs no classes: loose images count too
    elif len(subdirs) < 2:
        raise SpecError(f"'{path}' needs one sub-folder of images per class (at least two) for --task {task}")
    if task == "binary" and len(subdirs) != 2:
        raise SpecError(f"--task binary needs exactly two class sub-folders; '{path}' has {len(subdirs)}")
    if not items:
        raise SpecError(f"'{path}' holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    _check_bytes(len(items), math.prod(shape), f"'{path}'")
    x = np.empty((len(items), *shape), np.float32)
    for j, (p, _) in enumerate(items):
        a = _read_image(p, c, shape)
        x[j] = a[None] if c == 1 else a.transpose(2, 0, 1)
    y = np.array([i for _, i in items], np.int64)
    return x, y, [d.name for d in subdirs] or None


def _entries(folder):
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise SpecError(f"cannot list '{folder}': {exc.strerror or exc}") from None


def _is_image_file(p) -> bool:
    """An image-named entry must be a regular file (or a link to one): a FIFO would block the read
    and a device never ends, so they are refused rather than skipped."""
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        raise SpecError(f"cannot read image '{p}': {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        return False
    if not stat.S_ISREG(mode):
        raise SpecError(f"image '{p}' is {kind_of(mode)}, not a file")
    return True


def _read_image(p, channels, shape):
    """One image as float32 [H, W] or [H, W, 3] in [0, 1], at the spec's size. Its size is read from
    the header first and refused over MAX_IMAGE_PIXELS before any pixel is decoded."""
    import warnings

    from PIL import Image

    try:
        with _open_regular(p) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(handle) as im:  # reads the header only
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise _TooBig(w, h)
                im = im.convert("L" if channels == 1 else "RGB")
                if im.size != (shape[2], shape[1]):
                    im = im.resize((shape[2], shape[1]), Image.Resampling.BILINEAR)
                return np.asarray(im, np.float32) / 255
    except SpecError:
        raise
    except _TooBig as big:
        raise SpecError(f"image '{p}' is {big.args[0]:,} x {big.args[1]:,} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} archcalc decodes (a decompression bomb, or a photo to shrink "
                        "first)") from None
    except Image.DecompressionBombError:  # PIL's own limit, larger than ours: refused at the header too
        raise SpecError(f"image '{p}' is larger than the {MAX_IMAGE_PIXELS:,} pixels archcalc decodes "
                        "(a decompression bomb, or a photo to shrink first)") from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL's decoders raise many types for a damaged file
        why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise SpecError(f"cannot read image '{p}': {why}") from None


class _TooBig(Exception):
    pass


def _sample_patches(shape, seed):
    """Overlapping patches (stride = half the patch) of scikit-learn's two bundled photos."""
    c = _image_channels(shape, "sample-images")
    from sklearn.datasets import load_sample_images
    h, w = shape[1:]
    out = []
    for img in load_sample_images().images:
        a = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1) / 255  # [3, H, W]
        if c == 1:  # ITU-R 601 luma, as PIL's convert("L")
            a = (a * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
        if h > a.shape[1] or w > a.shape[2]:
            raise SpecError(f"sample-images photos are {a.shape[1]}x{a.shape[2]}: too small for "
                            f"{h}x{w} patches")
        p = F.unfold(a[None], (h, w), stride=(max(1, h // 2), max(1, w // 2)))  # [1, C*h*w, L]
        out.append(p[0].T.reshape(-1, c, h, w))
    x = torch.cat(out)
    if len(x) > MAX_PATCHES:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), MAX_PATCHES, replace=False))
        x = x[torch.as_tensor(keep)]
    return x.numpy()


def _torch_version() -> str:
    import torch

    return torch.__version__


def _torchvision(source, shape):
    name, _, root = source.removeprefix("torchvision:").partition(":")
    root = root or "data"  # torchvision's examples keep datasets under ./data
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise SpecError(f"'{source}' needs torchvision, which is not installed (pip install torchvision); "
                        "archcalc never downloads data, so the dataset must already be on disk") from None
    except Exception as exc:  # noqa: BLE001 - installed but broken: a wheel built for another torch
        raise SpecError(f"'{source}' needs torchvision, which is installed but does not load beside this "
                        f"torch {_torch_version()} ({type(exc).__name__}: {exc}); install the torchvision "
                        "built for it") from None
    names = [n for n in dir(tvd) if n[:1].isupper()]
    cls = getattr(tvd, name, None)
    if not isinstance(cls, type):
        raise SpecError(f"torchvision has no dataset '{name}'{did_you_mean(name, names)}")

    def make(train):
        try:
            try:
                return cls(root, train=train, download=False)
            except TypeError:  # datasets with `split` instead of `train` (SVHN, STL10, ...)
                return cls(root, split="train" if train else "test", download=False)
        except Exception as e:  # each dataset reports missing files its own way
            raise SpecError(f"torchvision dataset {name} is not on disk under '{root}' ({e}); archcalc "
                            f"never downloads: fetch it first, e.g. torchvision.datasets.{name}('{root}', "
                            "download=True), or give its folder as torchvision:NAME:ROOT") from None

    train, test = make(True), make(False)
    names = getattr(train, "classes", None)
    return (*_tv_arrays(train, shape), [str(c) for c in names] if names else None, _tv_arrays(test, shape))


def _tv_arrays(ds, shape):
    """Inputs [N, C, H, W] in [0, 1] and labels of a torchvision dataset, converted to the spec's
    channels and size when it asks for an image of another size or colour."""
    data = getattr(ds, "data", None)
    labels = getattr(ds, "targets", getattr(ds, "labels", None))
    if data is not None and labels is not None:
        x = torch.as_tensor(np.asarray(data))
        if x.dim() == 3:
            x = x[:, None]
        elif x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)  # stored HWC (CIFAR)
        x = x.float() / (255 if x.dtype == torch.uint8 else 1)
        y = np.asarray(labels)
    else:  # generic: whatever the items are, via PIL
        xs, y = [], []
        for img, label in ds:
            a = torch.as_tensor(np.asarray(img, np.float32) / 255)
            xs.append(a[None] if a.dim() == 2 else a.permute(2, 0, 1))
            y.append(label)
        x, y = torch.stack(xs), np.asarray(y)
    if len(shape) == 3 and shape[0] in (1, 3) and x.dim() == 4:
        if x.shape[1] != shape[0]:
            x = (x.mean(1, keepdim=True) if shape[0] == 1 else x.expand(-1, 3, -1, -1))
        if tuple(x.shape[2:]) != shape[1:]:
            x = F.interpolate(x, size=shape[1:], mode="bilinear", antialias=True, align_corners=False)
    return x.numpy(), y


# --- fitting, labels, splits, statistics ---------------------------------------------------------

def _fit(x, shape, what):
    """x reshaped to [N, *shape] when it holds the same values per example laid out compatibly:
    flattened to a vector, unflattened from one, or differing only in size-1 dims."""
    x = np.asarray(x)
    have = tuple(x.shape[1:])
    if have == shape:
        return x
    squeeze = lambda s: tuple(d for d in s if d != 1)
    if math.prod(have) == math.prod(shape) and (len(shape) == 1 or len(have) == 1
                                                 or squeeze(have) == squeeze(shape)):
        return x.reshape(len(x), *shape)
    dims = "x".join(map(str, have)) or "scalar"
    hint = f"[{', '.join(map(str, have))}]" + (f" or [{math.prod(have)}]" if len(have) > 1 else "")
    raise SpecError(f"{what} examples are {dims} ({math.prod(have)} values) but the spec's input is "
                    f"{list(shape)}; use an input of {hint}")


def _labels(y, task, classes, what, num_classes):
    """Targets as arrays the split and the loss expect, and the class names."""
    if task == "denoise":
        return None, None
    y = np.asarray(y)
    if task == "regress":
        if not np.issubdtype(y.dtype, np.number):
            raise SpecError(f"regression targets in {what} must be numbers, not {y.dtype}")
        return y.astype(np.float32), None
    y = y.reshape(len(y), -1)
    if y.shape[1] != 1:
        raise SpecError(f"{task} needs one label per example; {what} has labels of shape {list(y.shape[1:])}")
    y = y[:, 0]
    if classes is None:  # labels straight from a file: integers stay as they are, others are named
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            raise SpecError(f"class labels in {what} hold NaN or infinity (example "
                            f"{int(np.argwhere(~np.isfinite(y))[0][0])})")
        if np.issubdtype(y.dtype, np.integer) or y.dtype == bool or (
                np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            if np.issubdtype(y.dtype, np.floating) and np.abs(y).max(initial=0) >= 2**62:
                raise SpecError(f"class labels in {what} must be 0, 1, 2, ...; found {np.abs(y).max():g}")
            y = y.astype(np.int64)
            if y.min(initial=0) < 0:
                raise SpecError(f"class labels in {what} must be 0, 1, 2, ...; found {y.min()}")
            top = int(y.max(initial=0)) + 1
            if task == "classify" and num_classes is not None and num_classes < top:  # before naming `top` classes
                raise SpecError(f"{what} has {top:,} classes (labels 0 .. {top - 1:,}) but the spec's output has "
                                f"{num_classes} values; make the last layer output {top:,}")
            names = np.unique(y)
            if task == "binary" and not set(names) <= {0, 1}:
                y = np.searchsorted(names, y)
                classes = [str(n) for n in names]
            else:
                top = max(int(y.max(initial=0)) + 1, 2 if task == "binary" else 1)
                classes = [str(i) for i in range(top)]
        else:
            names, y = np.unique(y, return_inverse=True)
            classes = [str(n) for n in names]
    if task == "binary" and (len(classes) != 2 or y.max(initial=0) > 1):
        raise SpecError(f"--task binary needs two classes; {what} has {len(classes)}: use --task classify")
    if task == "classify" and num_classes is not None and num_classes < len(classes):
        raise SpecError(f"{what} has {len(classes)} classes but the spec's output has {num_classes} values; "
                        f"make the last layer output {len(classes)}")
    return y, classes


def _check_ids(x, vocab, what):
    if not np.issubdtype(x.dtype, np.integer):
        raise SpecError(f"the spec's input is token ids but {what} holds {x.dtype} values, not integers")
    if x.size and (x.min() < 0 or vocab is not None and x.max() >= vocab):
        raise SpecError(f"token ids in {what} run from {x.min()} to {x.max()}, outside the embedding's "
                        f"0..{(vocab or 1) - 1}")


def _check_fractions(val, test, folds, fold):
    if not (0 <= test < 1 and 0 <= val < 1 and val + test < 1):
        raise SpecError(f"validation and test fractions must be in [0, 1) and leave data for training; "
                        f"got {val} and {test}")
    if folds is not None:
        if folds < 2:
            raise SpecError(f"cross-validation needs at least 2 folds, not {folds}")
        if not 0 <= fold < folds:
            raise SpecError(f"fold {fold} does not exist: with {folds} folds it is 0 .. {folds - 1}")


def _split(idx, fraction, strat, seed):
    """(kept, split off) positions; stratified when labels are given."""
    from sklearn.model_selection import train_test_split
    if fraction <= 0 or len(idx) < 2:
        return idx, idx[:0]
    try:
        try:
            return tuple(train_test_split(idx, test_size=fraction, stratify=strat, random_state=seed))
        except ValueError:
            if strat is None:
                raise
            # a class too small to appear in both parts (tiny folders): an unstratified split still works
            return tuple(train_test_split(idx, test_size=fraction, random_state=seed))
    except ValueError:
        raise SpecError(f"{len(idx)} examples are too few to split off a fraction of {fraction}") from None


def _fold(idx, k, fold, strat, seed):
    from sklearn.model_selection import KFold, StratifiedKFold
    if len(idx) < k:
        raise SpecError(f"{len(idx)} examples (after the test split) are too few for {k} folds")
    splitter = KFold(k, shuffle=True, random_state=seed)
    if strat is not None and np.bincount(strat).max() >= k:  # otherwise StratifiedKFold refuses
        splitter, args = StratifiedKFold(k, shuffle=True, random_state=seed), (idx, strat)
    else:
        args = (idx,)
    train, val = list(splitter.split(*args))[fold]
    return idx[train], idx[val]


def _channel_stats(x):
    """Mean and std over every dim but the channel (dim 0 of an example; each feature of a vector)."""
    dims = [0] + list(range(2, x.dim()))
    std, mean = torch.std_mean(x.double(), dim=dims, correction=0, keepdim=True)
    # a constant channel (e.g. the digits' blank corner pixels as features) has nothing to scale
    std = torch.where(std < 1e-8, torch.ones_like(std), std)
    return mean[0].float(), std[0].float()


def _stats_from(stats, shape):
    view = shape if len(shape) == 1 else (shape[0],) + (1,) * (len(shape) - 1)
    mean, std = (torch.tensor(stats[k], dtype=torch.float32) for k in ("mean", "std"))
    if mean.numel() != math.prod(view) or std.numel() != mean.numel():
        raise SpecError(f"saved statistics for input {stats.get('shape')} do not fit the input {list(shape)}")
    return mean.view(view), std.view(view)
