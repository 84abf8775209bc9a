"""The gRPC edge: servicer (proto <-> domain only), status mapping, server factory."""
