"""The heuristic extractor: cue lexicons, cue matching, turn similarity and the rule-based classifier."""
