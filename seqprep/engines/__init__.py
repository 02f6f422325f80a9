"""Engines: where a build runs. Each calls the same public steps (:mod:`seqprep.steps`) and writers
(:mod:`seqprep.output`) in the same order:

- :mod:`~seqprep.engines.local`: this process, the reference;
- :mod:`~seqprep.engines.spill`: ``--memory-limit``: integer columns on disk, an external sort;
- :mod:`~seqprep.engines.dask`: a Dask cluster (``seqprep[dask]``).

Every engine gives the same vocabularies, sequences and meta counts (tests/test_golden.py,
tests/test_dask_engine.py and tests/test_spill.py check it).
"""
