"""Export to TF Serving's SavedModel layout, a built-in REST/gRPC server, and a client."""
