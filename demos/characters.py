"""Few-shot character data: a procedurally generated handwritten-character set, and Omniglot.

**Generated characters** (the default, nothing to download). Each class is a random composition of
2 to 4 strokes, each stroke a quadratic Bézier curve on the unit square. Each example redraws its
class's strokes with small per-example changes: its control points jittered, a random affine map
(rotation, scale, shear, translation) and a random pen thickness, like different people drawing the
same character. Images are 28x28 grey, strokes bright on black. Train, validation and test classes
are disjoint, and everything is deterministic from the seed.

**Omniglot** (Lake et al. 2015) from the standard folders the user downloaded:
``PATH/images_background/<alphabet>/<character>/*.png`` and ``PATH/images_evaluation/...``. The
1623 characters are pooled, shuffled with the seed, and split as in Finn et al.'s code: of the first
1200 (the paper's training characters), 1100 for meta-training and the last 100 for validation (the
validation curves and the choice of the best checkpoint), and the other 423 for testing. The three
splits are disjoint and, for a given seed, always the same. Images are inverted (strokes bright) and
resized to 28x28; rotations by 90°, 180° and 270° make extra classes (in every split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demos.common import DemoError

SIZE = 28
EXAMPLES = 20  # drawings per generated class, as Omniglot has
ROTATIONS = 4  # an Omniglot character and its rotations by 90°, 180° and 270°: four classes
OMNIGLOT_TRAIN, OMNIGLOT_VALIDATION = 1200, 100  # the training characters, and the last of them held out


@dataclass
class CharacterSet:
    """Images of one split, [classes, examples per class, 1, 28, 28] float32 in [0, 1]."""

    images: np.ndarray
    name: str

    @property
    def classes(self) -> int:
        return self.images.shape[0]

    @property
    def examples(self) -> int:
        return self.images.shape[1]

    def episodes(
        self, rng: np.random.Generator, tasks: int, ways: int, shots: int, queries: int, flags: str = "--queries"
    ) -> tuple[np.ndarray, ...]:
        """``tasks`` N-way episodes: support [T, N*K, 1, 28, 28] and query [T, N*Q, ...] with labels.

        Each episode draws N classes and, for each, K + Q distinct examples; labels 0..N-1 are
        assigned in a random order per episode. ``flags`` names the option that set Q, for errors.
        """
        if ways > self.classes:
            raise DemoError(f"{ways}-way episodes need {ways} classes, the {self.name} split has {self.classes}")
        if shots + queries > self.examples:
            raise DemoError(
                f"K = {shots} support + {queries} query examples per class, but the {self.name} split has "
                f"only {self.examples} examples per class; lower --shots or {flags}"
            )
        xs, xq = [], []
        for _ in range(tasks):
            classes = rng.choice(self.classes, ways, replace=False)
            picks = np.stack([rng.choice(self.examples, shots + queries, replace=False) for _ in range(ways)])
            images = self.images[classes[:, None], picks]  # [N, K + Q, 1, 28, 28]
            xs.append(images[:, :shots].reshape((ways * shots, 1, SIZE, SIZE)))
            xq.append(images[:, shots:].reshape((ways * queries, 1, SIZE, SIZE)))
        ys = np.tile(np.repeat(np.arange(ways), shots), (tasks, 1))
        yq = np.tile(np.repeat(np.arange(ways), queries), (tasks, 1))
        return np.stack(xs), ys, np.stack(xq), yq


# ---- generated characters ------------------------------------------------------------------------

_OFFSETS = np.stack(np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij"), -1).reshape(-1, 2)


def _bezier(control: np.ndarray, points: int = 24) -> np.ndarray:
    """Points along quadratic Bézier curves: control [..., 3, 2] -> [..., points, 2]."""
    t = np.linspace(0, 1, points)[:, None]
    p0, p1, p2 = control[..., 0:1, :], control[..., 1:2, :], control[..., 2:3, :]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _render(points: np.ndarray, thickness: np.ndarray) -> np.ndarray:
    """Rasterise point clouds [E, P, 2] (unit square) with pen widths [E] (pixels) -> [E, 28, 28].

    Each point inks the pixels within the pen's radius (a 5x5 neighbourhood is enough for pens
    up to 3 px); a pixel takes the darkest ink any point gives it.
    """
    examples = points.shape[0]
    position = points * SIZE
    pixels = np.floor(position).astype(np.int64)[:, :, None, :] + _OFFSETS  # [E, P, 25, 2]
    distance = np.sqrt(((pixels + 0.5 - position[:, :, None, :]) ** 2).sum(-1))
    ink = np.clip(thickness[:, None, None] / 2 + 0.5 - distance, 0.0, 1.0)
    inside = ((pixels >= 0) & (pixels < SIZE)).all(-1) & (ink > 0)
    flat = (np.arange(examples)[:, None, None] * SIZE + pixels[..., 0]) * SIZE + pixels[..., 1]
    image = np.zeros(examples * SIZE * SIZE, dtype=np.float32)
    np.maximum.at(image, flat[inside], ink[inside].astype(np.float32))
    return image.reshape(examples, SIZE, SIZE)


def generate_class(rng: np.random.Generator, examples: int) -> np.ndarray:
    """One character class: ``examples`` drawings of the same 2-4 random strokes, [E, 1, 28, 28]."""
    strokes = rng.integers(2, 5)
    control = rng.uniform(0.15, 0.85, (strokes, 3, 2))
    jittered = control[None] + rng.normal(0, 0.045, (examples, strokes, 3, 2))
    points = _bezier(jittered).reshape(examples, -1, 2) - 0.5
    angle = rng.normal(0, 0.25, examples)
    scale = rng.uniform(0.8, 1.15, (examples, 1))
    shear = rng.normal(0, 0.15, examples)
    cos, sin = np.cos(angle), np.sin(angle)
    affine = np.stack([np.stack([cos, -sin + shear], -1), np.stack([sin, cos], -1)], -2) * scale[..., None]
    points = np.einsum("eij,epj->epi", affine, points) + 0.5 + rng.normal(0, 0.06, (examples, 1, 2))
    return _render(points, rng.uniform(1.2, 2.4, examples))[:, None]


def generated_splits(
    seed: int, train: int = 1000, validation: int = 100, test: int = 300, examples: int = EXAMPLES
) -> dict[str, CharacterSet]:
    """Disjoint train / validation / test classes of generated characters (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    images = np.stack([generate_class(rng, examples) for _ in range(train + validation + test)])
    return {
        "train": CharacterSet(images[:train], "train"),
        "validation": CharacterSet(images[train : train + validation], "validation"),
        "test": CharacterSet(images[train + validation :], "test"),
    }


# ---- Omniglot -------------------------------------------------------------------------------------


def character_folders(root: Path) -> list[Path]:
    """The character folders of an Omniglot root, checked against the standard layout (quick: it lists
    folders, it reads no image), so that a wrong folder is refused before any work."""
    return _character_folders(root)


def _character_folders(root: Path) -> list[Path]:
    folders = []
    for part in ("images_background", "images_evaluation"):
        base = root / part
        if not base.is_dir():
            raise DemoError(
                f"{root} is not an Omniglot folder: {base} is missing (expected "
                "images_background/<alphabet>/<character>/*.png and images_evaluation/...)"
            )
        folders += sorted(c for a in sorted(base.iterdir()) if a.is_dir() for c in a.iterdir() if c.is_dir())
    if not folders:
        raise DemoError(f"{root}: no character folders under images_background/<alphabet>/<character>")
    return folders


def _load_character(folder: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise DemoError("reading Omniglot needs Pillow: pip install -e '.[demos]'") from None
    files = sorted(folder.glob("*.png"))
    if not files:
        raise DemoError(f"{folder} has no .png drawings")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                grey = im.convert("L").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        except (OSError, ValueError) as exc:  # a truncated or corrupt file, or one that is no image
            raise DemoError(f"{f}: cannot read this drawing ({type(exc).__name__}: {exc})") from None
        images.append(1.0 - np.asarray(grey, dtype=np.float32) / 255.0)  # strokes bright
    return np.stack(images)[:, None]


def omniglot_split_sizes(
    root: Path, train_characters: int = OMNIGLOT_TRAIN, validation_characters: int = OMNIGLOT_VALIDATION
) -> tuple[int, int, int]:
    """The characters (before rotations) of the training, validation and test splits of the Omniglot
    folder ``root`` (quick: it lists folders, it reads no image). The full Omniglot's 1623: 1100, 100 and
    423. A folder of ``train_characters`` or fewer (a test's) keeps three quarters for training and
    validation, a sixth of those (at least one) for validation, and the rest for testing."""
    if not 0 < validation_characters < train_characters:
        raise ValueError(f"validation_characters must be from 1 to train_characters - 1, got {validation_characters}")
    count = len(_character_folders(root))
    if count < 3:
        raise DemoError(f"{root} has {count} character folders: the demo needs 3 or more (training, validation, test)")
    if count <= train_characters:  # a small folder (tests): keep all three splits
        train_characters = max(2, count * 3 // 4)
        validation_characters = max(1, train_characters // 6)
    return train_characters - validation_characters, validation_characters, count - train_characters


def omniglot_splits(
    root: Path,
    seed: int,
    train_characters: int = OMNIGLOT_TRAIN,
    validation_characters: int = OMNIGLOT_VALIDATION,
    rotations: bool = True,
) -> dict[str, CharacterSet]:
    """Omniglot's characters in disjoint training, validation and test splits (see above and
    ``omniglot_split_sizes``): shuffled with ``seed``, the first ``train_characters`` but the last
    ``validation_characters`` of them for training, those for validation, the rest for testing."""
    train, validation, test = omniglot_split_sizes(root, train_characters, validation_characters)
    folders = _character_folders(root)
    order = np.random.default_rng(seed).permutation(len(folders))
    characters = [_load_character(folders[i]) for i in order]
    examples = min(c.shape[0] for c in characters)
    if examples < max(c.shape[0] for c in characters):
        short = sum(c.shape[0] == examples for c in characters)
        print(f"note: {short} Omniglot characters have only {examples} drawings, so every class keeps {examples}")
    images = np.stack([c[:examples] for c in characters])

    def split(start: int, stop: int, name: str) -> CharacterSet:
        chosen = images[start:stop]
        if rotations:
            chosen = np.concatenate([np.rot90(chosen, k, axes=(-2, -1)) for k in range(ROTATIONS)])
        return CharacterSet(np.ascontiguousarray(chosen), name)

    return {
        "train": split(0, train, "train"),
        "validation": split(train, train + validation, "validation"),
        "test": split(train + validation, train + validation + test, "test"),
    }
