//! Integration tests of `remediation-core`, in one binary: the lifecycle against the design
//! table (`lifecycle`), the engine against the testkit's stateful fakes (`engine`), and crash
//! recovery (`recovery`).

mod engine;
mod events;
mod lifecycle;
mod recovery;
