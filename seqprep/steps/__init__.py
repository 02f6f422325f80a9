"""One copy of each stage of a build, as functions of the shared data (:mod:`seqprep.model`).

Every engine - the local build, ``--memory-limit`` and Dask - calls these same functions (on the
whole log, on chunks, or on partitions), so a rule and its message live in exactly one place:

- :mod:`~seqprep.steps.missing`: rows with a missing user, item or timestamp;
- :mod:`~seqprep.steps.where`: the row filters of ``--where`` (predicates over any column);
- :mod:`~seqprep.steps.filters`: the cleaning steps in their fixed order (window, rating, dedup, k-core);
- :mod:`~seqprep.steps.clean`: missing values, ``--where``, unknown items of a reused vocabulary, then the filters;
- :mod:`~seqprep.steps.vocabularies` and :mod:`~seqprep.steps.reuse`: fitted or reused vocabularies;
- :mod:`~seqprep.steps.sort`: the stable (user, time) sort into CSR sequences;
- :mod:`~seqprep.steps.sessions`: session numbers within each user;
- :mod:`~seqprep.steps.session_key`: each session's user when a session column is the key (``--session-col``);
- :mod:`~seqprep.steps.splits`: the evaluation split and the training inputs (deciding, not writing);
- :mod:`~seqprep.steps.train_fit`: ``--vocab-from-train`` from per-range tallies (items fitted on the
  training rows, unseen rows dropped, users renumbered), one range or many;
- :mod:`~seqprep.steps.attributes`: item and user attribute tables joined onto the vocabularies;
- :mod:`~seqprep.steps.meta`: meta.json's content.
"""
