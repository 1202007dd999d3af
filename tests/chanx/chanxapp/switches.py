"""Dev-only fault switches, flipped by the /test/ routes.

Module state is enough: the server is one daphne process and these are read
on the same event loop that the routes run on.
"""

#: Usernames whose pings get no pong. ``None`` in the set means everyone.
withheld_pongs: set[str | None] = set()

#: While true, authentication answers 503 (and closes 4503).
auth_outage: bool = False


def pongs_withheld(username: str) -> bool:
    """Whether a ping from this user goes unanswered."""
    return None in withheld_pongs or username in withheld_pongs
