"""The aiohttp app: card, rating, vCard, API, health and metrics pages; templates beside it."""
