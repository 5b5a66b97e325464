"""Benchmark splits, action names and the official missing-skeleton lists of NTU RGB+D 60/120.

Split definitions and the sample order inside a split follow the reference (CTR-GCN
``seq_transformation.py``, data.md §3 and §2 step 5): a split part is the concatenation, in the
order of its ID list, of the samples with that ID, each group in name order.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from s2v.errors import S2VError

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
)  # fmt: skip

# benchmark -> (metadata column, train IDs, test IDs)
BENCHMARKS: dict[str, dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]]] = {
    "ntu60": {
        "xsub": (
            "subject",
            NTU60_XSUB_TRAIN,
            tuple(i for i in range(1, 41) if i not in NTU60_XSUB_TRAIN),
        ),
        "xview": ("camera", (2, 3), (1,)),
    },
    "ntu120": {
        "xsub": (
            "subject",
            NTU120_XSUB_TRAIN,
            tuple(i for i in range(1, 107) if i not in NTU120_XSUB_TRAIN),
        ),
        "xset": ("setup", tuple(range(2, 33, 2)), tuple(range(1, 33, 2))),
    },
}

# the largest IDs of each dataset: files outside them are not part of it
LIMITS = {"ntu60": {"setup": 17, "action": 60}, "ntu120": {"setup": 32, "action": 120}}

# Reference file names of the exported .npz (MAMP's; CTR-GCN calls them NTU60_CS/CV, NTU120_CSub/CSet)
EXPORT_NAMES = {
    ("ntu60", "xsub"): "NTU60_XSub.npz",
    ("ntu60", "xview"): "NTU60_XView.npz",
    ("ntu120", "xsub"): "NTU120_XSub.npz",
    ("ntu120", "xset"): "NTU120_XSet.npz",
}

# Action names, 1-based order (NTU RGB+D 60/120 papers, Shahroudy 2016, Liu 2019)
NTU_ACTIONS: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup",
    "throw", "sitting down", "standing up (from sitting position)", "clapping", "reading",
    "writing", "tear up paper", "wear jacket", "take off jacket", "wear a shoe",
    "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something", "reach into pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling",
    "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other", "put on headphone",
    "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up", "thumb down",
    "make ok sign", "make victory sign", "staple book", "counting money", "cutting nails",
    "cutting paper (using scissors)", "snapping fingers", "open bottle", "sniff (smell)",
    "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "hands up (both hands)",
    "cross arms", "arm circles", "arm swings", "running on the spot", "butt kicks (kick backward)",
    "cross toe touch", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with hand", "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip
assert len(NTU_ACTIONS) == 120


def benchmarks_of(dataset: str) -> tuple[str, ...]:
    """The benchmark names of a dataset, e.g. ('xsub', 'xview') for ntu60."""
    return tuple(BENCHMARKS[dataset])


def split_indices(ids: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Indices of the samples whose id is in ``order``, grouped in ``order``, stable inside."""
    ids = np.asarray(ids)
    parts = [np.flatnonzero(ids == i) for i in order]
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)


def make_splits(
    dataset: str, columns: dict[str, np.ndarray], benchmarks: tuple[str, ...]
) -> dict[str, dict[str, np.ndarray]]:
    """{benchmark: {'train': idx, 'test': idx}} from the metadata columns (samples in name order)."""
    out = {}
    for bench in benchmarks:
        if bench not in BENCHMARKS[dataset]:
            raise S2VError(f"{dataset} has no benchmark '{bench}' (has {benchmarks_of(dataset)})")
        column, train, test = BENCHMARKS[dataset][bench]
        out[bench] = {
            "train": split_indices(columns[column], train),
            "test": split_indices(columns[column], test),
        }
    return out


def read_name_list(path: str | Path) -> list[str]:
    """Sample names from a list file: the official format (3-line header) or one name a line.

    Lines that are not sample names (headers, blanks) are ignored; a '.skeleton' suffix is dropped.
    """
    from s2v.preprocess.ntu import parse_name

    names = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        token = line.strip()
        parsed = parse_name(token) if token else None
        if parsed is not None:
            names.append(parsed.name)
    return names


def builtin_missing_list(dataset: str) -> Path:
    """The packaged official missing-skeleton list of ntu60 or ntu120."""
    return Path(str(resources.files("s2v.preprocess") / "data" / f"{dataset}_missing.txt"))
