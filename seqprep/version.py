"""The package version (ground floor: meta.json records it; ``seqprep --version`` prints it)."""

__version__ = "0.1.0"
