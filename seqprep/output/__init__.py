"""Everything a build writes: the output folder (atomic), its files, the split files, exports and the
``-o -`` stream. Beside the steps: writers never decide what goes in a file, only how it is laid out.
"""
