//! Starting the first layer from given vectors (e.g. a sentence-embedding model's vector of each
//! vocabulary word) instead of Glorot noise alone: words with similar vectors then start by
//! driving the same hidden units. Training-time only: the network and its size do not change.

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// How vectors of another width are brought to the first hidden layer's width.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Projection {
    /// A seeded random ±1 projection (Johnson–Lindenstrauss: distances kept up to a scale).
    #[default]
    Random,
    /// The leading components, for vectors already rotated onto their principal axes
    /// (largest variance first); needs vectors at least as wide as the layer.
    Leading,
}

/// Starting rows for some of the first layer's inputs.
#[derive(Clone, Debug, Default)]
pub struct FirstLayerInit {
    /// `(feature, vector)`: every vector of one width; features out of range are an error.
    pub rows: Vec<(u32, Vec<f32>)>,
    /// Share of a row's variance that comes from its vector: the row starts at
    /// `sqrt(alpha) * projected + sqrt(1 - alpha) * glorot`, so its spread stays Glorot's
    /// whatever the mix (1 = the vector alone).
    pub alpha: f32,
    /// The projected rows' standard deviation as a multiple of Glorot's (1 = the same).
    pub scale: f32,
    pub projection: Projection,
}

/// Vectors by word, and how to start from them: [`FirstLayerInit`] before the vocabulary is
/// known. Read from a text file of `word<TAB>v1 v2 ...` lines (`benchmarks/minilm/word_vectors.py`
/// writes one).
#[derive(Clone, Debug, Default)]
pub struct WordVectors {
    pub vectors: HashMap<String, Vec<f32>>,
    pub alpha: f32,
    pub scale: f32,
    pub projection: Projection,
}

impl WordVectors {
    /// The vectors of a `word<TAB>v1 v2 ...` file (one width for all), with `alpha` 1, `scale`
    /// 1 and a random projection.
    pub fn from_path(path: &Path) -> Result<WordVectors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Training(format!("{}: {e}", path.display())))?;
        let mut vectors = HashMap::new();
        let mut width = None;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let bad = |what: &str| Error::Training(format!("{}:{}: {what}", path.display(), n + 1));
            let (word, values) = line.split_once('\t').ok_or_else(|| bad("no tab"))?;
            let v = values
                .split_whitespace()
                .map(|x| x.parse::<f32>().ok().filter(|x| x.is_finite()))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| bad("not a number"))?;
            if *width.get_or_insert(v.len()) != v.len() || v.is_empty() {
                return Err(bad("another width"));
            }
            vectors.insert(word.to_owned(), v);
        }
        Ok(WordVectors {
            vectors,
            alpha: 1.0,
            scale: 1.0,
            projection: Projection::Random,
        })
    }

    /// The rows of the vocabulary's words that have a vector (`vocabulary[i]` is feature
    /// `i + 1`, as the tokenizer numbers them); repeat features and bigrams have none.
    pub fn for_vocabulary(&self, vocabulary: &[String]) -> FirstLayerInit {
        FirstLayerInit {
            rows: vocabulary
                .iter()
                .enumerate()
                .filter_map(|(i, w)| Some((i as u32 + 1, self.vectors.get(w)?.clone())))
                .collect(),
            alpha: self.alpha,
            scale: self.scale,
            projection: self.projection,
        }
    }
}

impl FirstLayerInit {
    /// Overwrites the rows of `weights` (`(inputs, hidden)`, Glorot-initialised) that have a
    /// vector. The vectors are centred on their mean first (sentence-embedding vectors share a
    /// large common direction that would push every hidden unit alike), projected, and each
    /// projected row scaled to Glorot's standard deviation times `scale`.
    pub fn apply(&self, weights: &mut Array2<f32>, rng: &mut ChaCha8Rng) -> Result<()> {
        let (n_in, width) = weights.dim();
        let valid = (0.0..=1.0).contains(&self.alpha) && self.scale.is_finite() && self.scale > 0.0;
        if !valid {
            return Err(Error::Training(format!(
                "first-layer init needs alpha in [0, 1] and scale > 0 (got {}, {})",
                self.alpha, self.scale
            )));
        }
        let Some(dims) = self.rows.first().map(|(_, v)| v.len()) else {
            return Ok(());
        };
        if let Some((f, v)) = self
            .rows
            .iter()
            .find(|(f, v)| *f as usize >= n_in || v.len() != dims)
        {
            return Err(Error::Training(format!(
                "first-layer init row {f} ({} values) for {n_in} inputs of {dims} values",
                v.len()
            )));
        }
        let mut mean = vec![0.0f64; dims];
        for (_, v) in &self.rows {
            for (m, &x) in mean.iter_mut().zip(v) {
                *m += f64::from(x);
            }
        }
        let n = self.rows.len() as f64;
        let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
        let projection: Option<Array2<f32>> = match self.projection {
            Projection::Random => Some(Array2::from_shape_fn((dims, width), |_| {
                if rng.random::<bool>() {
                    1.0
                } else {
                    -1.0
                }
            })),
            Projection::Leading if dims >= width => None,
            Projection::Leading => {
                return Err(Error::Training(format!(
                    "leading components: {dims}-value vectors for a {width}-unit layer"
                )))
            }
        };
        let glorot_std = (2.0 / (n_in + width).max(1) as f64).sqrt() as f32;
        let target = glorot_std * self.scale;
        let (keep, mix) = ((1.0 - self.alpha).sqrt(), self.alpha.sqrt());
        let mut centred = vec![0.0f32; dims];
        let mut row = vec![0.0f32; width];
        for (f, v) in &self.rows {
            for ((c, &x), &m) in centred.iter_mut().zip(v).zip(&mean) {
                *c = x - m;
            }
            match &projection {
                Some(p) => {
                    row.iter_mut().for_each(|r| *r = 0.0);
                    for (&c, p_row) in centred.iter().zip(p.rows()) {
                        for (r, &pv) in row.iter_mut().zip(p_row) {
                            *r += c * pv;
                        }
                    }
                }
                None => row.copy_from_slice(&centred[..width]),
            }
            let rms = (row.iter().map(|r| r * r).sum::<f32>() / width as f32).sqrt();
            if rms == 0.0 {
                continue;
            }
            let k = mix * target / rms;
            let mut w = weights.row_mut(*f as usize);
            for (w, &r) in w.iter_mut().zip(&row) {
                *w = keep * *w + k * r;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn init(rows: Vec<(u32, Vec<f32>)>, alpha: f32, projection: Projection) -> FirstLayerInit {
        FirstLayerInit {
            rows,
            alpha,
            scale: 1.0,
            projection,
        }
    }

    #[test]
    fn alike_vectors_start_alike_and_other_rows_keep_their_start() {
        let mut w = Array2::from_elem((5, 8), 0.5f32);
        let rows = vec![
            (1, vec![1.0, 0.0, 0.0, 2.0]),
            (2, vec![1.0, 0.0, 0.0, 2.0]),
            (3, vec![-1.0, 0.0, 0.0, -2.0]),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        init(rows, 1.0, Projection::Random)
            .apply(&mut w, &mut rng)
            .unwrap();
        assert_eq!(w.row(1), w.row(2));
        assert!(w.row(0).iter().chain(w.row(4)).all(|&x| x == 0.5));
        let std = (w.row(1).iter().map(|x| x * x).sum::<f32>() / 8.0).sqrt();
        assert!((std - (2.0f32 / 13.0).sqrt()).abs() < 1e-5, "{std}");
        assert!(w.row(1).iter().zip(w.row(3)).all(|(a, b)| a * b < 0.0));
    }

    #[test]
    fn leading_components_keep_the_first_values_and_alpha_zero_changes_nothing() {
        let mut w = Array2::zeros((3, 2));
        let rows = vec![(1, vec![1.0, 2.0, 9.0]), (2, vec![-1.0, -2.0, -9.0])];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        init(rows.clone(), 1.0, Projection::Leading)
            .apply(&mut w, &mut rng)
            .unwrap();
        assert!(w[[1, 1]] > w[[1, 0]] && w[[1, 0]] > 0.0);
        let before = Array2::from_elem((3, 2), 0.25f32);
        let mut w = before.clone();
        init(rows, 0.0, Projection::Leading)
            .apply(&mut w, &mut rng)
            .unwrap();
        assert_eq!(w, before);
    }

    #[test]
    fn word_vectors_map_onto_the_vocabulary_features() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "c#\t1 2 3\nnode.js\t-1 0.5 2e-1\n\nunused\t0 0 0\n").unwrap();
        let words = WordVectors::from_path(&path).unwrap();
        let vocab = ["python", "c#", "c#×2", "node.js"].map(String::from);
        let init = words.for_vocabulary(&vocab);
        assert_eq!(
            init.rows,
            vec![(2, vec![1.0, 2.0, 3.0]), (4, vec![-1.0, 0.5, 0.2])]
        );
        for bad in ["w 1 2\n", "w\t1 x\n", "a\t1 2\nb\t1\n", "w\tNaN\n"] {
            std::fs::write(&path, bad).unwrap();
            assert!(WordVectors::from_path(&path).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_rows_are_errors() {
        let mut w = Array2::zeros((3, 2));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for rows in [vec![(3, vec![1.0, 2.0])], vec![(1, vec![1.0])]] {
            assert!(init(rows, 1.0, Projection::Leading)
                .apply(&mut w, &mut rng)
                .is_err());
        }
    }
}
