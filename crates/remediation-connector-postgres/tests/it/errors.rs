//! Error mapping, protection, permissions and health against a real server.
