//! predict (being written).
