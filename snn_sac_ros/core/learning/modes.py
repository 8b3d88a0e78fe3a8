"""The feedback modes by name: what each one's hidden layers and action gradient read (data only, no math).

Kept apart from :mod:`.feedback` so that the command line can list the modes without loading numba.
"""

from __future__ import annotations

from dataclasses import dataclass

HIDDEN_PATHS = ("transpose", "random", "direct", "learned", "frozen")
ACTION_PATHS = ("transpose", "random", "learned")


@dataclass(frozen=True)
class FeedbackMode:
    """One rung of the ladder: the hidden layers' error path, the action gradient's path, and what they read."""

    name: str
    hidden: str
    action: str
    summary: str
    transports: str
    """the forward weights the mode reads to deliver errors ("none": no weight transport)"""

    @property
    def weight_transport(self) -> bool:
        return self.transports != "none"

    @property
    def learns_feedback(self) -> bool:
        return self.hidden == "learned" or self.action == "learned"


FEEDBACK_MODES: dict[str, FeedbackMode] = {m.name: m for m in (
    FeedbackMode("exact", "transpose", "transpose",
                 "backprop: hidden errors through the transposed forward weights of the layer above, dQ/da through "
                 "the critics' forward weights", "forward weights, to every hidden error and to dQ/da"),
    FeedbackMode("fa-hidden", "random", "transpose",
                 "feedback alignment in the hidden layers (fixed random matrices); dQ/da still through the critics' "
                 "forward weights", "critics' forward weights, to dQ/da"),
    FeedbackMode("fa", "random", "random",
                 "feedback alignment: fixed random feedback matrices in every network, dQ/da through the critics' own "
                 "fixed random feedback", "none"),
    FeedbackMode("dfa", "direct", "random",
                 "direct feedback alignment: the output error to every hidden layer through fixed random matrices, "
                 "dQ/da through the critics' fixed random feedback", "none"),
    FeedbackMode("kp", "learned", "learned",
                 "Kolen-Pollack: every feedback matrix learns by its forward matrix's local update, both with the same "
                 "weight decay; dQ/da through the critics' learned feedback", "none"),
    FeedbackMode("pes", "frozen", "transpose",
                 "fixed random hidden layers, only the output connections (decoders) learn, PES-like; dQ/da through "
                 "the critics' decoders and encoders", "critics' decoders and encoders, to dQ/da"),
)}
ALIASES = {"random": "fa-hidden"}  # the name feedback alignment in the hidden layers had in earlier checkpoints


def feedback_mode(name: str) -> FeedbackMode:
    """The mode called ``name`` (or an earlier name of it); a clear error for an unknown one."""
    mode = FEEDBACK_MODES.get(ALIASES.get(name, name))
    if mode is None:
        raise ValueError(f"feedback must be one of {sorted(FEEDBACK_MODES)}, got {name!r}")
    return mode
