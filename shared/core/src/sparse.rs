//! Compressed sparse rows of sorted `u32` indices: binary bag-of-words features and label sets.
//!
//! Binary bags of words are the whole input of the model, so rows store only which indices are
//! present; dense rows are never built for a vocabulary.

use serde::{Deserialize, Serialize};

/// Rows of sorted, de-duplicated indices, stored back to back (CSR without values).
///
/// Deserializing checks the CSR invariants (row offsets start at 0, never decrease and end at
/// the index count; each row strictly increasing), so rows read from an artifact cannot make
/// [`SparseRows::row`] index out of bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSparseRows")]
pub struct SparseRows {
    indptr: Vec<usize>,
    indices: Vec<u32>,
}

/// The serialized form of [`SparseRows`], before its invariants are checked.
#[derive(Deserialize)]
struct RawSparseRows {
    indptr: Vec<usize>,
    indices: Vec<u32>,
}

impl TryFrom<RawSparseRows> for SparseRows {
    type Error = String;

    fn try_from(raw: RawSparseRows) -> Result<Self, String> {
        let RawSparseRows { indptr, indices } = raw;
        if indptr.first() != Some(&0) {
            return Err(format!(
                "sparse rows: offsets must start at 0, found {:?}",
                indptr.first()
            ));
        }
        if indptr.last() != Some(&indices.len()) {
            return Err(format!(
                "sparse rows: last offset {:?} does not match {} indices",
                indptr.last(),
                indices.len()
            ));
        }
        // All offsets are checked before any row is sliced: with the last one equal to the
        // index count, non-decreasing offsets keep every row in bounds.
        if let Some(row) = indptr.windows(2).position(|w| w[0] > w[1]) {
            return Err(format!(
                "sparse rows: row {row} has offsets {}..{} (decreasing)",
                indptr[row],
                indptr[row + 1]
            ));
        }
        for (row, w) in indptr.windows(2).enumerate() {
            if !indices[w[0]..w[1]].is_sorted_by(|a, b| a < b) {
                return Err(format!("sparse rows: row {row} is not strictly increasing"));
            }
        }
        Ok(SparseRows { indptr, indices })
    }
}

/// No rows (a derived `Default` would lack the leading 0 offset every row count relies on).
impl Default for SparseRows {
    fn default() -> Self {
        Self::new()
    }
}

impl SparseRows {
    /// Rows from their CSR parts, checking every invariant (see the type's docs).
    pub fn from_parts(indptr: Vec<usize>, indices: Vec<u32>) -> Result<Self, String> {
        Self::try_from(RawSparseRows { indptr, indices })
    }

    /// The CSR parts: row offsets (starting at 0) and the indices of all rows back to back.
    pub fn parts(&self) -> (&[usize], &[u32]) {
        (&self.indptr, &self.indices)
    }

    pub fn new() -> Self {
        Self {
            indptr: vec![0],
            indices: Vec::new(),
        }
    }

    pub fn with_capacity(rows: usize, nnz: usize) -> Self {
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0);
        Self {
            indptr,
            indices: Vec::with_capacity(nnz),
        }
    }

    /// Appends a row; the indices are sorted and de-duplicated here so callers need not.
    pub fn push_row(&mut self, row: &[u32]) {
        let start = self.indices.len();
        self.indices.extend_from_slice(row);
        let tail = &mut self.indices[start..];
        if !tail.is_sorted_by(|a, b| a < b) {
            tail.sort_unstable();
            let mut write = start;
            for read in start..self.indices.len() {
                if write == start || self.indices[read] != self.indices[write - 1] {
                    self.indices[write] = self.indices[read];
                    write += 1;
                }
            }
            self.indices.truncate(write);
        }
        self.indptr.push(self.indices.len());
    }

    pub fn len(&self) -> usize {
        self.indptr.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.indices[self.indptr[i]..self.indptr[i + 1]]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.len()).map(move |i| self.row(i))
    }

    /// The rows at `order`, in that order.
    pub fn select(&self, order: &[usize]) -> SparseRows {
        let nnz = order.iter().map(|&i| self.row(i).len()).sum();
        let mut out = SparseRows::with_capacity(order.len(), nnz);
        for &i in order {
            out.indices.extend_from_slice(self.row(i));
            out.indptr.push(out.indices.len());
        }
        out
    }

    /// Largest index + 1 (0 when empty): the least dimension the rows fit in.
    pub fn min_dim(&self) -> usize {
        self.indices.iter().max().map_or(0, |&m| m as usize + 1)
    }
}

impl<'a> FromIterator<&'a [u32]> for SparseRows {
    fn from_iter<T: IntoIterator<Item = &'a [u32]>>(iter: T) -> Self {
        let mut out = SparseRows::new();
        for row in iter {
            out.push_row(row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_row_sorts_and_dedups() {
        let mut rows = SparseRows::new();
        rows.push_row(&[5, 1, 5, 3]);
        rows.push_row(&[]);
        rows.push_row(&[2]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.row(0), &[1, 3, 5]);
        assert!(rows.row(1).is_empty());
        assert_eq!(rows.select(&[2, 0]).row(1), &[1, 3, 5]);
        assert_eq!(rows.min_dim(), 6);
    }

    #[test]
    fn default_is_empty() {
        assert_eq!(SparseRows::default().len(), 0);
        assert_eq!(SparseRows::default(), SparseRows::new());
    }

    #[test]
    fn serde_round_trip_keeps_rows() {
        let rows: SparseRows = [&[1u32, 4][..], &[], &[0, 2, 9]].into_iter().collect();
        let json = serde_json::to_string(&rows).unwrap();
        assert_eq!(serde_json::from_str::<SparseRows>(&json).unwrap(), rows);
    }

    #[test]
    fn deserializing_rejects_rows_that_break_the_csr_invariants() {
        for (json, why) in [
            (r#"{"indptr":[],"indices":[]}"#, "start at 0"),
            (r#"{"indptr":[1,2],"indices":[5,6]}"#, "start at 0"),
            (r#"{"indptr":[0,3],"indices":[5,6]}"#, "does not match"),
            (r#"{"indptr":[0,2,1,2],"indices":[5,6]}"#, "decreasing"),
            (r#"{"indptr":[0,3,1,2],"indices":[5,6]}"#, "decreasing"),
            (r#"{"indptr":[0,2],"indices":[6,5]}"#, "strictly increasing"),
            (r#"{"indptr":[0,2],"indices":[5,5]}"#, "strictly increasing"),
        ] {
            let err = serde_json::from_str::<SparseRows>(json).unwrap_err();
            assert!(err.to_string().contains(why), "{json}: {err}");
        }
    }
}
