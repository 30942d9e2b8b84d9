"""ccshortlink: after a contact-center call, text the customer a short link to the same agent."""

__version__ = "0.1.0"
