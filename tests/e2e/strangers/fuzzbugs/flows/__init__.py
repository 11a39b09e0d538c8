"""No hand-written flows: this app is here for `nocrud fuzz`."""
