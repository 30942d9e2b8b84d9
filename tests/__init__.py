"""ccshortlink's test suite, in folders that mirror the layers."""
