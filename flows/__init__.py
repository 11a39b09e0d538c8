"""Example flows for example_app (the lab-inventory API). `nocrud list` shows them."""
