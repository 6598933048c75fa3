//! thresholds (being written).
