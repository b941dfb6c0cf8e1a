"""cellar: load, save, hash and fetch model weights through libcellar."""
from ._cellar import CellarError, CellarNotFound, version as __version__  # noqa: F401
