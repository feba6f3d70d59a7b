//! Loopback exchange simulator: the four venues' protocols served locally, with fault injection.
