//! Compressed sparse rows of sorted `u32` indices: binary bag-of-words features and label sets.
//!
//! Binary bags of words are the whole input of the model, so rows store only which indices are
//! present; dense rows are never built for a vocabulary.

use serde::{Deserialize, Serialize};

/// Rows of sorted, de-duplicated indices, stored back to back (CSR without values).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseRows {
    indptr: Vec<usize>,
    indices: Vec<u32>,
}

impl SparseRows {
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
}
