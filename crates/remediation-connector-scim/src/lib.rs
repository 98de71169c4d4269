//! SCIM 2.0 connector (work in progress).
mod state;
mod wire;
