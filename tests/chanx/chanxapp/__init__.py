"""A small Chanx (Django Channels + DRF) app that tether's Chanx adapter is tested against."""
