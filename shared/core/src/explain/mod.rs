//! DeepSHAP word attributions for the tag model: which words pushed a tag's probability up or down.
//!
//! This is the algorithm of shap's `DeepExplainer` for a dense ReLU network ending in a sigmoid,
//! explaining the sigmoid probability (Lundberg & Lee 2017, DeepLIFT's rescale rule of Shrikumar
//! et al. 2017). For every background row `r`, the question `x` and `r` are run forward; the
//! multiplier of each output is back-propagated through the transposed weights, and every
//! nonlinearity `f` (ReLU, final sigmoid) scales it by `(f(z_x) - f(z_r)) / (z_x - z_r)`, or by the
//! derivative `f'(z_x)` when `|z_x - z_r| < 1e-6` (shap's threshold). Feature `i` then gets
//! `multiplier_i * (x_i - r_i)`, averaged over the background rows. Because the rescale rule sums
//! to the difference, the attributions of one output add up to `probability - expected_value`,
//! where the expected value is the mean background probability.
//!
//! Inputs are binary bags of words given by the indices of their ones, so only the features where
//! `x` and `r` differ contribute, and the first-layer multiplier is computed for those alone.
//! Every requested output is back-propagated at once (a `hidden x outputs` multiplier matrix per
//! background row), so explaining all predicted tags costs little more than explaining one.
//! Weights are `f32`; the arithmetic here is `f64`, which keeps additivity at rounding level.
//!
//! ```
//! use ndarray::{array, Array1};
//! use tagger_core::explain::shap_values;
//! use tagger_core::model::{Dense, Mlp};
//! use tagger_core::sparse::SparseRows;
//!
//! let model = Mlp::from_layers(vec![
//!     Dense { weights: array![[0.5f32], [1.0], [-2.0]], bias: Array1::zeros(1) },
//!     Dense { weights: array![[1.5f32]], bias: array![-0.5] },
//! ])?;
//! let background: SparseRows = [&[0u32][..], &[2]].into_iter().collect();
//! let attr = &shap_values(&model, &background, &[1], &[0])?[0];
//! let total: f64 = attr.features.iter().map(|&(_, v)| v).sum();
//! assert!((total - (attr.probability - attr.expected_value)).abs() < 1e-12);
//! # Ok::<(), tagger_core::Error>(())
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Mlp;
use crate::sparse::SparseRows;

mod explainer;
mod math;
mod summary;
mod words;

pub use explainer::Explainer;
pub use summary::{summary, FeatureImportance, Summary, TagImportance};
pub use words::{
    explain_tags, explain_words, explanations_json, fold_subwords, token_values, FoldWord,
    TagExplanation, WordAttribution, WordOptions,
};

/// Below this input difference a nonlinearity's rescale ratio is replaced by its derivative
/// (shap's `nonlinearity_1d` handler uses the same threshold).
pub(crate) const RESCALE_EPS: f64 = 1e-6;

/// The attributions of one model output for one question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Index of the explained output (tag).
    pub output: usize,
    /// The model's probability for this output on the question.
    pub probability: f64,
    /// Mean probability over the background rows: the baseline the attributions start from.
    pub expected_value: f64,
    /// `(feature, attribution)` for every feature with a nonzero attribution, by feature index.
    /// The values add up to `probability - expected_value`.
    pub features: Vec<(u32, f64)>,
}

impl Attribution {
    /// The attribution of `feature` (0 when it has none).
    pub fn value(&self, feature: u32) -> f64 {
        self.features
            .binary_search_by_key(&feature, |&(f, _)| f)
            .map_or(0.0, |i| self.features[i].1)
    }
}

/// Explains one question against a background; see [`Explainer`] to explain many questions.
///
/// Errors: [`Error::NoBackground`] when `background` has no rows, [`Error::OutputOutOfRange`]
/// when an output index is not one of the model's outputs.
pub fn shap_values(
    model: &Mlp,
    background: &SparseRows,
    x: &[u32],
    outputs: &[usize],
) -> Result<Vec<Attribution>> {
    Explainer::new(Arc::new(model.clone()), background)?.shap_values(x, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::model::{sigmoid, Dense};
    use ndarray::{array, Array1, Array2};
    use proptest::prelude::*;

    fn rows(list: &[&[u32]]) -> SparseRows {
        list.iter().copied().collect()
    }

    /// 3 inputs -> 1 ReLU unit -> 1 sigmoid output (the module example).
    fn tiny() -> Mlp {
        Mlp::from_layers(vec![
            Dense {
                weights: array![[0.5f32], [1.0], [-2.0]],
                bias: Array1::zeros(1),
            },
            Dense {
                weights: array![[1.5f32]],
                bias: array![-0.5],
            },
        ])
        .unwrap()
    }

    fn s(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    fn total(a: &Attribution) -> f64 {
        a.features.iter().map(|&(_, v)| v).sum()
    }

    fn assert_additive(a: &Attribution, tol: f64) {
        let gap = total(a) - (a.probability - a.expected_value);
        assert!(
            gap.abs() <= tol,
            "output {}: sum {} vs delta {}",
            a.output,
            total(a),
            a.probability - a.expected_value
        );
    }

    /// Straightforward dense DeepLIFT-rescale, one output and one background row at a time:
    /// the reference the sparse, batched implementation must agree with.
    fn reference(model: &Mlp, background: &SparseRows, x: &[u32], j: usize) -> Vec<f64> {
        let n_in = model.n_inputs();
        let dense = |r: &[u32]| {
            let mut v = vec![0.0f64; n_in];
            r.iter()
                .filter(|&&i| (i as usize) < n_in)
                .for_each(|&i| v[i as usize] = 1.0);
            v
        };
        let forward = |v: &[f64]| {
            let mut zs = Vec::new();
            let mut a = v.to_vec();
            for (l, layer) in model.layers().iter().enumerate() {
                let z: Vec<f64> = (0..layer.weights.ncols())
                    .map(|o| {
                        f64::from(layer.bias[o])
                            + (0..a.len())
                                .map(|i| a[i] * f64::from(layer.weights[[i, o]]))
                                .sum::<f64>()
                    })
                    .collect();
                a = if l + 1 < model.layers().len() {
                    z.iter().map(|&v| v.max(0.0)).collect()
                } else {
                    z.clone()
                };
                zs.push(z);
            }
            zs
        };
        let xv = dense(x);
        let zx = forward(&xv);
        let mut phi = vec![0.0; n_in];
        for r in background.iter() {
            let rv = dense(r);
            let zr = forward(&rv);
            let last = model.layers().len() - 1;
            // multiplier w.r.t. the last pre-activation
            let mut m: Vec<f64> = (0..model.n_outputs())
                .map(|o| if o == j { 1.0 } else { 0.0 })
                .collect();
            for l in (0..=last).rev() {
                for (h, mh) in m.iter_mut().enumerate() {
                    let (a, b) = (zx[l][h], zr[l][h]);
                    *mh *= match (l == last, (a - b).abs() < 1e-6) {
                        (true, false) => (s(a) - s(b)) / (a - b),
                        (true, true) => s(a) * (1.0 - s(a)),
                        (false, false) => (a.max(0.0) - b.max(0.0)) / (a - b),
                        (false, true) => f64::from(u8::from(a > 0.0)),
                    };
                }
                let w = &model.layers()[l].weights;
                m = (0..w.nrows())
                    .map(|i| (0..w.ncols()).map(|o| f64::from(w[[i, o]]) * m[o]).sum())
                    .collect();
            }
            for i in 0..n_in {
                phi[i] += m[i] * (xv[i] - rv[i]);
            }
        }
        phi.iter().map(|p| p / background.len() as f64).collect()
    }

    #[test]
    fn matches_hand_derived_rescale_values() {
        let model = tiny();
        let attr = &shap_values(&model, &rows(&[&[0], &[2]]), &[1], &[0]).unwrap()[0];
        // r = {0}: hidden z 1.0 vs 0.5 (ReLU ratio 1); output z 1.0 vs 0.25.
        let s1 = (s(1.0) - s(0.25)) / 0.75;
        // r = {2}: hidden z 1.0 vs -2.0 (ReLU ratio 1/3); output z 1.0 vs -0.5.
        let s2 = (s(1.0) - s(-0.5)) / 1.5;
        let expected = [
            (0u32, -0.75 * s1 / 2.0),
            (1, (1.5 * s1 + 0.5 * s2) / 2.0),
            (2, s2 / 2.0),
        ];
        assert_eq!(attr.features.len(), 3);
        for ((f, v), (ef, ev)) in attr.features.iter().zip(expected) {
            assert_eq!(*f, ef);
            assert!((v - ev).abs() < 1e-12, "feature {f}: {v} vs {ev}");
        }
        assert!((attr.probability - s(1.0)).abs() < 1e-12);
        assert!((attr.expected_value - (s(0.25) + s(-0.5)) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn empty_question_is_still_additive() {
        let model = tiny();
        let attr = &shap_values(&model, &rows(&[&[0], &[2], &[0, 1]]), &[], &[0]).unwrap()[0];
        assert!(!attr.features.is_empty());
        assert_additive(attr, 1e-12);
        assert!((attr.probability - f64::from(sigmoid(model.logits(&[])[0]))).abs() < 1e-6);
    }

    #[test]
    fn rejects_empty_background() {
        let err = shap_values(&tiny(), &SparseRows::new(), &[1], &[0]).unwrap_err();
        assert!(matches!(err, Error::NoBackground), "{err}");
    }

    #[test]
    fn rejects_output_out_of_range() {
        let err = shap_values(&tiny(), &rows(&[&[0]]), &[1], &[0, 1]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutputOutOfRange {
                    output: 1,
                    n_outputs: 1
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("output 1"));
    }

    #[test]
    fn question_equal_to_every_background_row_gets_no_attribution() {
        let attr = &shap_values(&tiny(), &rows(&[&[0, 2], &[0, 2]]), &[2, 0], &[0]).unwrap()[0];
        assert!(attr.features.is_empty());
        assert!((attr.probability - attr.expected_value).abs() < 1e-15);
    }

    #[test]
    fn zero_weight_feature_uses_derivative_fallback_without_nan() {
        // Feature 1 has zero weights: x and r differ only there, so every z_x == z_r.
        let model = Mlp::from_layers(vec![
            Dense {
                weights: array![[0.7f32, -0.3], [0.0, 0.0]],
                bias: array![0.1, 0.2],
            },
            Dense {
                weights: array![[1.0f32], [2.0]],
                bias: array![0.0],
            },
        ])
        .unwrap();
        let attr = &shap_values(&model, &rows(&[&[0]]), &[0, 1], &[0]).unwrap()[0];
        assert!(attr.features.iter().all(|&(_, v)| v.is_finite()));
        assert_eq!(attr.value(1), 0.0);
        assert_additive(attr, 1e-12);
    }

    #[test]
    fn ignores_out_of_range_unsorted_and_duplicate_features() {
        let model = tiny();
        let bg = rows(&[&[0], &[2, 99]]);
        let clean = shap_values(&model, &bg, &[1, 2], &[0]).unwrap();
        let messy = shap_values(&model, &bg, &[2, 1, 1, 1000], &[0]).unwrap();
        assert_eq!(clean, messy);
        assert!(clean[0].features.iter().all(|&(f, _)| f < 3));
    }

    #[test]
    fn batched_outputs_equal_one_at_a_time() {
        let model = Mlp::from_layers(vec![
            Dense {
                weights: Array2::from_shape_fn((6, 4), |(i, j)| {
                    ((i * 7 + j * 3) % 5) as f32 * 0.4 - 0.8
                }),
                bias: Array1::from_elem(4, 0.1),
            },
            Dense {
                weights: Array2::from_shape_fn((4, 3), |(i, j)| {
                    ((i + 2 * j) % 3) as f32 * 0.7 - 0.6
                }),
                bias: array![0.2, -0.1, 0.0],
            },
        ])
        .unwrap();
        let bg = rows(&[&[0, 1], &[2], &[3, 4, 5], &[]]);
        let x = [1u32, 4];
        let all = shap_values(&model, &bg, &x, &[2, 0, 1, 0]).unwrap();
        for a in &all {
            let single = &shap_values(&model, &bg, &x, &[a.output]).unwrap()[0];
            assert_eq!(single.features.len(), a.features.len());
            for (p, q) in a.features.iter().zip(&single.features) {
                assert_eq!(p.0, q.0);
                assert!((p.1 - q.1).abs() < 1e-14);
            }
        }
        assert_eq!(
            all.iter().map(|a| a.output).collect::<Vec<_>>(),
            vec![2, 0, 1, 0]
        );
    }

    fn arb_case() -> impl Strategy<Value = (Mlp, SparseRows, Vec<u32>)> {
        (
            1usize..12,
            prop::collection::vec(1usize..7, 0..4),
            1usize..5,
        )
            .prop_flat_map(|(n_in, hidden, n_out)| {
                let mut sizes = vec![n_in];
                sizes.extend(hidden);
                sizes.push(n_out);
                let layers: Vec<_> = sizes
                    .windows(2)
                    .map(|w| {
                        (
                            Just((w[0], w[1])),
                            prop::collection::vec(-2.0f32..2.0, w[0] * w[1]),
                            prop::collection::vec(-1.0f32..1.0, w[1]),
                        )
                    })
                    .collect();
                // Indices up to n_in + 2: out-of-range ones must be ignored.
                let index = 0..(n_in as u32 + 2);
                (
                    layers,
                    prop::collection::vec(prop::collection::vec(index.clone(), 0..8), 1..6),
                    prop::collection::vec(index, 0..8),
                )
                    .prop_map(|(layers, bg, x)| {
                        let layers = layers
                            .into_iter()
                            .map(|((i, o), w, b)| Dense {
                                weights: Array2::from_shape_vec((i, o), w).unwrap(),
                                bias: Array1::from(b),
                            })
                            .collect();
                        let bg: SparseRows = bg.iter().map(|r| r.as_slice()).collect();
                        (Mlp::from_layers(layers).unwrap(), bg, x)
                    })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn attributions_sum_to_probability_minus_expected_value((model, bg, x) in arb_case()) {
            let outputs: Vec<usize> = (0..model.n_outputs()).collect();
            let attrs = shap_values(&model, &bg, &x, &outputs).unwrap();
            prop_assert_eq!(attrs.len(), outputs.len());
            // `Mlp::logits` expects de-duplicated indices (it would count a repeat twice).
            let mut x = x;
            x.sort_unstable();
            x.dedup();
            for a in &attrs {
                let gap = total(a) - (a.probability - a.expected_value);
                prop_assert!(gap.abs() <= 1e-6, "output {} gap {}", a.output, gap);
                prop_assert!((a.probability - f64::from(model.predict_proba(&x)[a.output])).abs() < 1e-5);
            }
        }

        #[test]
        fn agrees_with_dense_reference((model, bg, x) in arb_case()) {
            for j in 0..model.n_outputs() {
                let ours = &shap_values(&model, &bg, &x, &[j]).unwrap()[0];
                for (i, want) in reference(&model, &bg, &x, j).into_iter().enumerate() {
                    prop_assert!((ours.value(i as u32) - want).abs() < 1e-9, "output {} feature {}: {} vs {}", j, i, ours.value(i as u32), want);
                }
            }
        }
    }

    fn attribution(features: Vec<(u32, f64)>) -> Attribution {
        Attribution {
            output: 0,
            probability: 0.9,
            expected_value: 0.1,
            features,
        }
    }

    fn name(f: u32) -> Option<String> {
        (f < 100).then(|| format!("w{f}"))
    }

    fn words(list: &[WordAttribution]) -> Vec<&str> {
        list.iter().map(|w| w.word.as_str()).collect()
    }

    #[test]
    fn top_words_rank_present_words_with_ties_by_index() {
        let attr = attribution(vec![
            (1, 0.3),
            (2, -0.5),
            (3, 0.3),
            (4, 0.9),
            (5, -0.5),
            (6, -0.1),
            (7, 2.0),
            (150, 1.0),
        ]);
        let present = [7, 6, 5, 4, 3, 2, 1, 150];
        let e = explain_words(&attr, "python", name, &present, &WordOptions::default());
        assert_eq!(e.tag, "python");
        // 150 has no name and is skipped; ties (1, 3) and (2, 5) go to the lower index.
        assert_eq!(words(&e.positive), ["w7", "w4", "w1", "w3"]);
        assert_eq!(words(&e.negative), ["w2", "w5", "w6"]);
        assert_eq!(e.positive[0].value, 2.0);

        let e = explain_words(
            &attr,
            "python",
            name,
            &present,
            &WordOptions {
                k: 2,
                present_only: true,
            },
        );
        assert_eq!(words(&e.positive), ["w7", "w4"]);
        assert_eq!(words(&e.negative), ["w2", "w5"]);
    }

    #[test]
    fn absent_words_are_named_only_when_asked() {
        let attr = attribution(vec![(1, 0.3), (2, -0.5), (9, 0.8)]);
        let e = explain_words(&attr, "t", name, &[1, 2], &WordOptions::default());
        assert_eq!(words(&e.positive), ["w1"]);
        let e = explain_words(
            &attr,
            "t",
            name,
            &[1, 2],
            &WordOptions {
                k: 5,
                present_only: false,
            },
        );
        assert_eq!(words(&e.positive), ["w9", "w1"]);
        assert_eq!(words(&e.negative), ["w2"]);
    }

    #[test]
    fn fold_subwords_moves_sub_word_values_onto_their_words() {
        // Features: 1 and 2 sub-words of both words, 3 of "bakes" only; 5 is "baking"; 7
        // another feature (a repeat feature, say).
        let a = attribution(vec![(1, 0.4), (2, 0.2), (3, -0.1), (5, 0.1), (7, 0.05)]);
        let words = [
            FoldWord {
                word: "baking".into(),
                feature: Some(5),
                subwords: vec![1, 2],
            },
            FoldWord {
                word: "bakes".into(),
                feature: None,
                subwords: vec![1, 3],
            },
            FoldWord {
                word: "in".into(),
                feature: None,
                subwords: vec![],
            },
        ];
        let (folded, names) = fold_subwords(&a, &words, 100);
        // Feature 1 is made by both words (half each), 2 by "baking" alone, 3 by "bakes".
        assert_eq!(names, [(101, "bakes".to_string())]);
        let value = |f| folded.value(f);
        assert!((value(5) - (0.1 + 0.2 + 0.2)).abs() < 1e-12, "{folded:?}");
        assert!((value(101) - (0.2 - 0.1)).abs() < 1e-12, "{folded:?}");
        assert_eq!(value(7), 0.05);
        assert_eq!(
            value(1) + value(2) + value(3),
            0.0,
            "no sub-word keeps a value"
        );
        let total = |a: &Attribution| a.features.iter().map(|(_, v)| v).sum::<f64>();
        assert!((total(&folded) - total(&a)).abs() < 1e-12);
        let explained = explain_words(
            &folded,
            "tag",
            |f| match f {
                5 => Some("baking".into()),
                101 => Some("bakes".into()),
                _ => name(f),
            },
            &[1, 2, 3, 5, 7, 101],
            &WordOptions::default(),
        );
        let named: Vec<&str> = explained.positive.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(named, ["baking", "bakes", "w7"]);
    }

    #[test]
    fn token_values_look_up_each_token() {
        let attr = attribution(vec![(1, 0.3), (2, -0.5)]);
        let lookup = |t: &str| match t {
            "a" => Some(1),
            "b" => Some(2),
            "c" => Some(3),
            _ => None,
        };
        let tv = token_values(&["a", "zz", "b", "c", "a"], &attr, lookup);
        let values: Vec<f64> = tv.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [0.3, 0.0, -0.5, 0.0, 0.3]);
    }

    #[test]
    fn summary_ranks_words_by_mean_absolute_attribution() {
        let model = tiny();
        let bg = rows(&[&[0], &[2]]);
        let questions = rows(&[&[1], &[0, 1], &[2]]);
        let names = ["zero", "one", "two"];
        let feature_name = |f: u32| names.get(f as usize).map(|s| s.to_string());
        let explainer = Explainer::new(Arc::new(model.clone()), &bg).unwrap();
        let sm = summary(
            &explainer,
            &questions,
            &[0],
            |_| "tag".into(),
            feature_name,
            2,
        )
        .unwrap();
        assert_eq!(sm.questions, 3);
        assert_eq!(sm.tags, ["tag"]);
        assert_eq!(sm.features.len(), 2);
        // Recompute the means from per-question attributions.
        let mut mean = [0.0f64; 3];
        for q in questions.iter() {
            let a = &shap_values(&model, &bg, q, &[0]).unwrap()[0];
            for (f, m) in mean.iter_mut().enumerate() {
                *m += a.value(f as u32).abs() / 3.0;
            }
        }
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]));
        assert_eq!(sm.features[0].word, names[order[0]]);
        assert!((sm.features[0].mean_abs[0] - mean[order[0]]).abs() < 1e-12);
        assert_eq!(sm.per_tag[0].words[1].word, names[order[1]]);
        let back: Summary = serde_json::from_str(&serde_json::to_string(&sm).unwrap()).unwrap();
        assert_eq!(back.tags, sm.tags);
        assert_eq!(back.per_tag[0].words.len(), sm.per_tag[0].words.len());
        for (a, b) in back.features.iter().zip(&sm.features) {
            assert_eq!((a.feature, &a.word), (b.feature, &b.word));
            assert!((a.mean_abs[0] - b.mean_abs[0]).abs() < 1e-15);
        }
    }

    #[test]
    fn summary_of_no_questions_is_empty() {
        let explainer = Explainer::new(Arc::new(tiny()), &rows(&[&[0]])).unwrap();
        let sm = summary(
            &explainer,
            &SparseRows::new(),
            &[0],
            |_| "t".into(),
            name,
            20,
        )
        .unwrap();
        assert_eq!(sm.questions, 0);
        assert!(sm.features.is_empty() && sm.per_tag[0].words.is_empty());
    }
}
