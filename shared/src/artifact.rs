//! artifact (being written).
