//! A stateful fake of the GitHub REST API (in progress).
