"""`onboardd demo`: fill a salon with a believable history through a running daemon.

Modules: ``people`` (the messy customer export, pure), ``story`` (the fake calendar and who
registers and books, pure), ``api`` (the daemon's REST API over aiohttp), ``host`` (what the
host app writes: users and bookings), ``backdate`` (the one place that rewrites timestamps),
``flow`` (the steps in order) and ``cli`` (arguments, checks, the printed summary).
"""
