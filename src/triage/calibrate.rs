//! Confidence calibration: turns the retriever's features into `P(the answer is right)`.
//!
//! The model is a logistic regression over [`FEATURES`] features (see
//! [`Retrieval::features`](super::retriever::Retrieval::features)), including how thinly
//! the knowledge base covers each entry. Its weights are constants, fitted by
//! [`fit_clinc150`] on knowledge bases drawn from CLINC150 `train` alone: all 150 intents
//! and several sets of 20, each with 4 to 80 phrasings per entry. Held-out phrasings of
//! the knowledge base's intents are asked and labelled right or wrong; `oos_train` and,
//! for the 20-intent bases, phrasings of intents left out are asked as out-of-scope
//! questions (always wrong). `val` and `oos_val`, which `switchboard eval` reports, are
//! never used for fitting.
//!
//! Out-of-scope questions are weighted to make up [`OOS_SHARE`] of each knowledge base's
//! questions: a stated prior for "how often customers ask something the knowledge base
//! does not cover".

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::knowledge::Entry;
use super::retriever::Index;
use super::TriageError;

/// Number of calibration features.
pub const FEATURES: usize = 9;

/// Share of out-of-scope questions assumed when fitting.
const OOS_SHARE: f32 = 0.2;
/// Phrasings per entry in the fitted knowledge bases: from a hand-written FAQ to CLINC150.
const PHRASINGS: [usize; 5] = [4, 8, 16, 32, 80];
/// Entries of the small knowledge bases, and how many different small ones per size.
const SMALL_KB: usize = 20;
const SMALL_KBS: usize = 3;
/// Held-out questions asked per entry (CLINC150 has 100 phrasings per intent in `train`).
const HELD_OUT: usize = 20;
/// Phrasings asked from each intent left out of a small knowledge base.
const LEFT_OUT_ASKED: usize = 3;

/// Logistic weights (one per feature) and bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Weights in [`Retrieval::features`](super::retriever::Retrieval::features) order.
    pub weights: [f32; FEATURES],
    /// Intercept.
    pub bias: f32,
}

impl Default for Calibration {
    /// Fitted by `fit_clinc150` on CLINC150 `train` + `oos_train`.
    fn default() -> Self {
        Calibration {
            weights: [
                6.643, 2.566, 1.329, -0.273, 1.315, 6.446, -23.291, 14.990, 7.449,
            ],
            bias: -5.907,
        }
    }
}

impl Calibration {
    /// `P(right)` for one retrieval's features.
    pub fn confidence(&self, x: &[f32; FEATURES]) -> f32 {
        let z: f32 = self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + self.bias;
        1.0 / (1.0 + (-z).exp())
    }
}

/// CLINC150's training part: `[text, intent]` pairs.
#[derive(Debug, Deserialize)]
struct Clinc150Train {
    train: Vec<(String, String)>,
    oos_train: Vec<(String, String)>,
}

/// One labelled retrieval for fitting.
struct Sample {
    x: [f32; FEATURES],
    right: bool,
    weight: f32,
}

/// Fits the calibration on CLINC150 `train`; also returns the held-out top-1 accuracy of
/// the full-size knowledge base, so a change to the retriever can be judged without `val`.
pub fn fit_clinc150(path: &Path) -> Result<(Calibration, f32), TriageError> {
    let err = |detail: String| TriageError::Knowledge {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let data: Clinc150Train =
        serde_json::from_str(&text).map_err(|e| err(format!("not CLINC150 JSON: {e}")))?;
    let mut by_intent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (text, intent) in data.train {
        by_intent.entry(intent).or_default().push(text);
    }
    let intents: Vec<(String, Vec<String>)> = by_intent.into_iter().collect();
    if intents.len() < 2 * SMALL_KB || data.oos_train.is_empty() {
        return Err(err("`train` or `oos_train` is too small".into()));
    }
    let min_phrasings = intents.iter().map(|(_, t)| t.len()).min().unwrap_or(0);
    if min_phrasings < PHRASINGS[PHRASINGS.len() - 1] + HELD_OUT {
        return Err(err(format!("an intent has only {min_phrasings} phrasings")));
    }
    let mut kbs: Vec<Vec<usize>> = vec![(0..intents.len()).collect()];
    // Small knowledge bases: every k-th intent, at different offsets, so they mix domains.
    let stride = intents.len() / SMALL_KB;
    for offset in 0..SMALL_KBS {
        kbs.push((0..SMALL_KB).map(|i| i * stride + offset).collect());
    }
    let mut samples = Vec::new();
    let mut top1 = 0.0;
    for (k, kb) in kbs.iter().enumerate() {
        for (p, &phrasings) in PHRASINGS.iter().enumerate() {
            // A different window of each intent's phrasings per setting.
            let start = (k * 7 + p * 13) % (min_phrasings - phrasings - HELD_OUT + 1);
            let entries: Vec<Entry> = kb
                .iter()
                .map(|&i| {
                    let (intent, texts) = &intents[i];
                    Entry {
                        id: intent.clone(),
                        question: intent.replace('_', " "),
                        phrasings: texts[start..start + phrasings].to_vec(),
                        answer: format!("(answer for {intent})"),
                        category: None,
                    }
                })
                .collect();
            let index = Index::build(entries);
            let mut in_scope = Vec::new();
            for (e, &i) in kb.iter().enumerate() {
                let held = &intents[i].1[start + phrasings..start + phrasings + HELD_OUT];
                for text in held {
                    let r = index.retrieve(text);
                    in_scope.push((r.features(), r.best == Some(e)));
                }
            }
            if k == 0 && phrasings == PHRASINGS[PHRASINGS.len() - 1] {
                let right = in_scope.iter().filter(|(_, right)| *right).count();
                top1 = right as f32 / in_scope.len().max(1) as f32;
            }
            let mut oos: Vec<[f32; FEATURES]> = data
                .oos_train
                .iter()
                .map(|(text, _)| index.retrieve(text).features())
                .collect();
            for (i, (_, texts)) in intents.iter().enumerate() {
                if !kb.contains(&i) {
                    for text in texts.iter().take(LEFT_OUT_ASKED) {
                        oos.push(index.retrieve(text).features());
                    }
                }
            }
            let w_oos = OOS_SHARE / (1.0 - OOS_SHARE) * in_scope.len() as f32 / oos.len() as f32;
            // Each knowledge base counts the same, whatever its number of questions.
            let w_kb = 1000.0 / in_scope.len() as f32;
            samples.extend(in_scope.into_iter().map(|(x, right)| Sample {
                x,
                right,
                weight: w_kb,
            }));
            samples.extend(oos.into_iter().map(|x| Sample {
                x,
                right: false,
                weight: w_kb * w_oos,
            }));
        }
    }
    Ok((fit_logistic(&samples), top1))
}

/// Weighted logistic regression by Newton's method: few features, so the Hessian is tiny
/// and a dozen iterations converge exactly (no learning rate to tune).
fn fit_logistic(samples: &[Sample]) -> Calibration {
    const N: usize = FEATURES + 1;
    let mut beta = [0.0_f64; N];
    for _ in 0..25 {
        let mut grad = [0.0_f64; N];
        let mut hess = [[0.0_f64; N]; N];
        for s in samples {
            let mut x = [1.0_f64; N];
            for (slot, v) in x.iter_mut().zip(s.x) {
                *slot = v as f64;
            }
            let z: f64 = beta.iter().zip(&x).map(|(b, v)| b * v).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = if s.right { 1.0 } else { 0.0 };
            let w = s.weight as f64;
            for i in 0..N {
                grad[i] += w * (y - p) * x[i];
                for j in 0..N {
                    hess[i][j] += w * p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        // A small ridge keeps the system solvable when a feature is constant.
        for (i, row) in hess.iter_mut().enumerate() {
            row[i] += 1e-3;
        }
        let step = solve(hess, grad);
        for (b, d) in beta.iter_mut().zip(step) {
            *b += d;
        }
    }
    let mut weights = [0.0; FEATURES];
    for (w, b) in weights.iter_mut().zip(&beta[..FEATURES]) {
        *w = *b as f32;
    }
    Calibration {
        weights,
        bias: beta[FEATURES] as f32,
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> [f64; N] {
    for col in 0..N {
        let pivot = (col..N)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        if a[col][col].abs() < 1e-12 {
            continue;
        }
        for row in col + 1..N {
            let f = a[row][col] / a[col][col];
            let pivot = a[col];
            for (cell, above) in a[row][col..].iter_mut().zip(&pivot[col..]) {
                *cell -= f * above;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let s: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = if a[row][row].abs() < 1e-12 {
            0.0
        } else {
            (b[row] - s) / a[row][row]
        };
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_fit_recovers_a_separating_direction() {
        let samples: Vec<Sample> = (0..200)
            .map(|i| {
                let v = i as f32 / 200.0;
                Sample {
                    x: [v, 0.5, 0.0, 1.0, 1.0, 0.1, 0.1 * v, 0.05, 0.1],
                    right: (i * 7919 % 200) as f32 / 200.0 < v,
                    weight: 1.0,
                }
            })
            .collect();
        let c = fit_logistic(&samples);
        assert!(c.weights[0] > 2.0, "{c:?}");
        let x = |v: f32| [v, 0.5, 0.0, 1.0, 1.0, 0.1, 0.1 * v, 0.05, 0.1];
        assert!(c.confidence(&x(0.9)) > c.confidence(&x(0.1)));
    }
}
