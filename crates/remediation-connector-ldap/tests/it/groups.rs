//! Group membership tests.
