//! predictor (being written).
