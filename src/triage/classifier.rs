//! A linear intent classifier trained on the knowledge base's phrasings when it loads.
//!
//! Nearest-neighbour BM25 only looks at the one phrasing closest to the query; a linear
//! model looks at all of an entry's phrasings at once and learns which words *separate*
//! it from the other entries (for "what is my credit limit" vs "increase my credit limit",
//! the verb matters and "credit" does not). The two views err differently, which is why
//! the retriever uses both.
//!
//! Features are the query's terms (stemmed words), adjacent term pairs and each word's
//! leading four letters (so "transferring"/"transfers" share a feature the light stemmer
//! misses), binary and scaled to unit length so long messages do not look more certain.
//! Training is the averaged multiclass passive-aggressive algorithm (PA-I, Crammer et
//! al. 2006): each example moves only its own class and the most offending wrong class,
//! so weights stay sparse and 150 entries x 100 phrasings train in a fraction of a second.
//! Averaging the weights over all steps is what keeps the model from chasing the last
//! examples it saw (it acts as regularisation). Shuffling uses a fixed seed, so the same
//! knowledge base always gives the same model.

use std::collections::HashMap;

use super::text;

/// Passes over the training phrasings.
const EPOCHS: usize = 8;
/// PA-I aggressiveness: the largest step one example may take.
const AGGRESSIVENESS: f32 = 0.5;
/// Letters of a word kept for its prefix feature.
const PREFIX: usize = 4;

/// The classifier's features of a text, as strings: terms, term pairs, word prefixes.
pub fn features(text_in: &str) -> Vec<String> {
    let terms = text::terms(text_in);
    let mut out: Vec<String> = Vec::with_capacity(terms.len() * 3);
    for pair in terms.windows(2) {
        out.push(format!("{} {}", pair[0], pair[1]));
    }
    for word in text::words(text_in) {
        if word.chars().count() > PREFIX {
            out.push(format!(
                "{}~",
                word.chars().take(PREFIX).collect::<String>()
            ));
        }
    }
    out.extend(terms);
    out.sort_unstable();
    out.dedup();
    out
}

/// A trained linear model: per feature, the weights of the classes it votes for.
#[derive(Debug, Default)]
pub struct Classifier {
    classes: usize,
    vocab: HashMap<String, u32>,
    /// Sparse rows: only classes the feature was ever updated for.
    weights: Vec<Vec<(u32, f32)>>,
}

/// A feature row being trained: current weight and the step-weighted sum for averaging.
#[derive(Default, Clone)]
struct Row(Vec<(u32, f32, f32)>);

impl Row {
    fn add(&mut self, class: u32, delta: f32, step: f32) {
        match self.0.iter_mut().find(|(c, _, _)| *c == class) {
            Some(slot) => {
                slot.1 += delta;
                slot.2 += step * delta;
            }
            None => self.0.push((class, delta, step * delta)),
        }
    }
}

impl Classifier {
    /// Trains on `(text, class)` examples; classes are `0..classes`.
    pub fn train(examples: &[(&str, usize)], classes: usize) -> Classifier {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let encoded: Vec<(Vec<u32>, u32)> = examples
            .iter()
            .map(|(text, class)| {
                let ids = features(text)
                    .into_iter()
                    .map(|f| {
                        let next = vocab.len() as u32;
                        *vocab.entry(f).or_insert(next)
                    })
                    .collect();
                (ids, *class as u32)
            })
            .filter(|(ids, _): &(Vec<u32>, u32)| !ids.is_empty())
            .collect();
        let mut rows = vec![Row::default(); vocab.len()];
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut scores = vec![0.0_f32; classes];
        let mut step = 1.0_f32;
        for _ in 0..EPOCHS {
            shuffle(&mut order, &mut rng);
            for &i in &order {
                let (ids, gold) = &encoded[i];
                let value = 1.0 / (ids.len() as f32).sqrt();
                scores.iter_mut().for_each(|s| *s = 0.0);
                for &f in ids {
                    for &(c, w, _) in &rows[f as usize].0 {
                        scores[c as usize] += w * value;
                    }
                }
                let rival = (0..classes)
                    .filter(|&c| c != *gold as usize)
                    .max_by(|&a, &b| scores[a].total_cmp(&scores[b]));
                if let Some(rival) = rival {
                    let loss = 1.0 - (scores[*gold as usize] - scores[rival]);
                    if loss > 0.0 {
                        // ||x_gold - x_rival||^2 = 2 for unit-length x.
                        let tau = (loss / 2.0).min(AGGRESSIVENESS) * value;
                        for &f in ids {
                            rows[f as usize].add(*gold, tau, step);
                            rows[f as usize].add(rival as u32, -tau, step);
                        }
                    }
                }
                step += 1.0;
            }
        }
        // Averaged weights: w_avg = w - (sum of step * delta) / steps.
        let weights = rows
            .into_iter()
            .map(|row| {
                row.0
                    .into_iter()
                    .map(|(c, w, acc)| (c, w - acc / step))
                    .filter(|(_, w)| *w != 0.0)
                    .collect()
            })
            .collect();
        Classifier {
            classes,
            vocab,
            weights,
        }
    }

    /// Scores every class for `text`; all zero when no feature is known.
    /// Also returns the share of the text's features the model knows (0..1).
    pub fn scores(&self, text: &str) -> (Vec<f32>, f32) {
        let mut scores = vec![0.0; self.classes];
        let feats = features(text);
        if feats.is_empty() {
            return (scores, 0.0);
        }
        let value = 1.0 / (feats.len() as f32).sqrt();
        let mut known = 0;
        for f in &feats {
            if let Some(&id) = self.vocab.get(f) {
                known += 1;
                for &(c, w) in &self.weights[id as usize] {
                    scores[c as usize] += w * value;
                }
            }
        }
        (scores, known as f32 / feats.len() as f32)
    }
}

/// Fisher-Yates with xorshift64: deterministic, no dependency.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = (*state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_which_words_separate_classes() {
        let model = Classifier::train(
            &[
                ("what is my credit limit", 0),
                ("tell me my credit limit", 0),
                ("increase my credit limit", 1),
                ("raise the limit on my card", 1),
            ],
            2,
        );
        let (s, known) = model.scores("can you increase the credit limit");
        assert!(s[1] > s[0], "{s:?}");
        assert!(known > 0.5);
        let (s, known) = model.scores("🙂");
        assert_eq!((s, known), (vec![0.0, 0.0], 0.0));
    }
}
