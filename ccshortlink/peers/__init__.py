"""Stand-in peers, NOT for production: embedded AMI peer, transcripts, SMS sink and demo.

Shipped for `ccshortlink demo`, the tests and the benchmarks. Nothing in core/, app/, ami/,
smpp/, store/ or web/ may import this package (the import contract says so).
"""
