"""Engines that run the build somewhere else than in this process.

The local pipeline (:func:`seqprep.pipeline.run`) is the default and the reference; every engine here
must give the same vocabularies, sequences and meta counts (tests/test_dask_engine.py checks it).
"""
