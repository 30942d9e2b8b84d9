"""Unit tests of the pure core, the config readers and the use cases with small fakes."""
