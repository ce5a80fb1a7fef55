"""Personal data and secrets: found and replaced before anything is written or sent (:mod:`.redact`)."""
