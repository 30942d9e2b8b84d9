"""The pure domain: records, vocabularies, call tracking, policy, links, SMS encoding; no I/O."""
