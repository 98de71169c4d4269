//! Integration tests of `remediation-core`, in one binary: the lifecycle against the design
//! table (`lifecycle`), and the engine against the testkit's stateful fakes (`engine`).

mod engine;
mod lifecycle;
