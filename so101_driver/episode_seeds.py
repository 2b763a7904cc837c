"""The seed of each sim episode: one first seed counting up, or a list given seed by seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class EpisodeSeeds:
    """Episode k's seed: listed[k], then counting up from the last one listed.

    One seed S gives S, S+1, S+2, ...; (3, 7, 11) gives 3, 7, 11, 12, ...
    """

    listed: tuple[int, ...]

    def __post_init__(self):
        if not self.listed:
            raise ValueError("seed needs at least one value, e.g. 0 or 3,7,11.")
        bad = [seed for seed in self.listed if isinstance(seed, bool) or not isinstance(seed, int)
               or not 0 <= seed <= MAX_SEED]
        if bad:
            raise ValueError(f"seed takes integers from 0 to {MAX_SEED} (one, or a list), got {bad[0]!r}.")

    @classmethod
    def parse(cls, value: int | str | Sequence[int]) -> EpisodeSeeds:
        """An integer, a list of them, or the text a user types: "5" or "3,7,11" ("[3, 7, 11]" too)."""
        if isinstance(value, str):
            words = [word.strip() for word in value.strip().strip("[]").split(",") if word.strip()]
            if not all(_is_int(word) for word in words):
                raise ValueError(f"seed takes integers from 0 to {MAX_SEED} (one, or a comma-separated list), "
                                 f"got '{value}'.")
            return cls(tuple(int(word) for word in words))
        if isinstance(value, int):
            return cls((value,))
        return cls(tuple(value))

    @property
    def is_list(self) -> bool:
        return len(self.listed) > 1

    def __getitem__(self, episode: int) -> int:
        if episode < len(self.listed):
            return self.listed[episode]
        return self.listed[-1] + episode - len(self.listed) + 1

    def __str__(self) -> str:
        return ",".join(str(seed) for seed in self.listed)


def _is_int(word: str) -> bool:
    try:
        int(word)
    except ValueError:
        return False
    return True
