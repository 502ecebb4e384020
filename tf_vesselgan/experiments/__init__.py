"""`vesselgan run`: the paper's studies as resumable stages, ending in a report."""
