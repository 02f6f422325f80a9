"""``python -m seqprep`` is the ``seqprep`` command."""

from .cli import main

if __name__ == "__main__":
    main()
