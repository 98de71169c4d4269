//! Integration tests of the configuration loader.

mod fuzz;
mod store;
