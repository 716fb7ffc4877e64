//! Console pages tests (being written).
