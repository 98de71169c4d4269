//! GitHub connector (in progress).
