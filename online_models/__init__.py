"""Pure domain logic of ecom-stream: profiles, attribution, River models, recommendations
and bidding. Synchronous, no I/O, no wall clock: time comes from event timestamps."""

__version__ = "0.1.0"
