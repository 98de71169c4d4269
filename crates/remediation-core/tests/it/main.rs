//! Integration tests of `remediation-core`, in one binary: the lifecycle against the design
//! table (`lifecycle`), the engine against the testkit's stateful fakes (`engine`), crash
//! recovery (`recovery`) and rollbacks with their approval (`rollback`).

mod cloudevents;
mod engine;
mod events;
mod follow_up;
mod leases;
mod lifecycle;
mod records;
mod recovery;
mod requeue;
mod rollback;
