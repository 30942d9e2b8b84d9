"""The whole program as a user runs it: real processes, real files, real peers."""
