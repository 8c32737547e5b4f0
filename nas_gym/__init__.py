"""nas-gym: Gymnasium environments for Neural Architecture Search with real child training.

``import nas_gym`` registers the env ids and imports no torch; training code loads when an env
is made.
"""

from nas_gym.registration import ENV_IDS, register_envs
from nas_gym.search_space import (
    DEFAULT_VOCABULARY,
    Architecture,
    ArchitectureSyntaxError,
    OutOfSpaceError,
    Vocabulary,
)

__all__ = [
    "DEFAULT_VOCABULARY",
    "ENV_IDS",
    "Architecture",
    "ArchitectureSyntaxError",
    "OutOfSpaceError",
    "Vocabulary",
]
__version__ = "0.1.0"

register_envs()
