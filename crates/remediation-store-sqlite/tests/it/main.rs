//! Integration tests of the SQLite store: durability across reopening, the append-only and
//! verifiable audit, exact limit windows, clear open errors, and several processes at once.

mod audit;
mod concurrency;
mod conformance;
mod delivery;
mod limits;
mod open;
mod roundtrip;
mod sessions;
mod support;
mod transfer;
mod writer;
