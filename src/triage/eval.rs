//! `switchboard eval`: measures the embedded answerer on CLINC150.
//!
//! The confidence calibration is fitted on `train` only (see `calibrate.rs`), so the
//! figures reported here are held out.
//!
//! The knowledge base is built from `train` (one entry per intent, its training utterances
//! as phrasings); the answerer then sees `val` (in scope) and `oos_val` (out of scope).
//! An in-scope query is *correct* when answered with its intent's entry; an out-of-scope
//! query is *caught* when the confidence falls below the threshold (an escalation). A
//! *wrong answer* is any answered query whose entry is not its label (out-of-scope answers
//! included), counted over all queries: that is what a customer would see go wrong.
//!
//! Only the answerer and the confidence threshold are measured here: the other policies
//! (human request, sentiment, ...) are about the conversation, not the question.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use serde::Deserialize;

use super::knowledge::Entry;
use super::retriever::{Index, Retrieval};
use super::{TriageConfig, TriageError};

/// Thresholds printed in the sweep table.
const SWEEP: [f32; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

/// The label CLINC150 gives out-of-scope queries.
const OOS: &str = "oos";

/// CLINC150 as shipped (`clinc150_train_val.json`): lists of `[text, intent]` pairs.
#[derive(Debug, Deserialize)]
struct Clinc150 {
    train: Vec<(String, String)>,
    val: Vec<(String, String)>,
    oos_val: Vec<(String, String)>,
}

/// Quality at one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    /// Confidence threshold.
    pub threshold: f32,
    /// In-scope queries answered with the right entry / in-scope queries.
    pub in_scope_accuracy: f32,
    /// Out-of-scope queries escalated / out-of-scope queries.
    pub oos_recall: f32,
    /// Answers with a wrong entry / all queries.
    pub wrong_answer_rate: f32,
    /// Escalated queries / all queries.
    pub escalation_rate: f32,
}

/// The result of one evaluation run.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// Entries in the knowledge base built from `train`.
    pub entries: usize,
    /// In-scope (`val`) queries.
    pub in_scope: usize,
    /// Out-of-scope (`oos_val`) queries.
    pub out_of_scope: usize,
    /// The figures at the chosen threshold.
    pub chosen: SweepRow,
    /// The figures across [`SWEEP`] thresholds.
    pub sweep: Vec<SweepRow>,
    /// In-scope top-1 accuracy ignoring the threshold (the retriever alone).
    pub top1_accuracy: f32,
    /// Time to build the index (BM25 and classifier training) from `train`, milliseconds.
    pub build_ms: u64,
    /// Median time per query, microseconds.
    pub p50_us: u64,
    /// 99th-percentile time per query, microseconds.
    pub p99_us: u64,
}

/// One evaluated query: its label, what the retriever returned and the predicted label.
pub(crate) struct Scored {
    pub label: String,
    pub predicted: Option<String>,
    pub retrieval: Retrieval,
}

/// Evaluates the embedded answerer on CLINC150 at `threshold` (default: the config default).
pub fn eval_clinc150(path: &Path, threshold: Option<f32>) -> Result<EvalReport, TriageError> {
    let threshold = threshold.unwrap_or_else(|| TriageConfig::default().confidence_threshold);
    let started = Instant::now();
    let (index, in_scope, out_of_scope) = load_clinc150(path)?;
    let build_ms = started.elapsed().as_millis() as u64;
    let mut times = Vec::with_capacity(in_scope.len() + out_of_scope.len());
    let mut scored = Vec::with_capacity(times.capacity());
    for (text, label) in in_scope.iter().chain(&out_of_scope) {
        let started = Instant::now();
        let retrieval = index.retrieve(text);
        times.push(started.elapsed().as_micros() as u64);
        let predicted = retrieval.best.map(|e| index.entries()[e].id.clone());
        scored.push(Scored {
            label: label.clone(),
            predicted,
            retrieval,
        });
    }
    times.sort_unstable();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let top1 = scored
        .iter()
        .filter(|s| s.label != OOS && s.predicted.as_deref() == Some(&s.label))
        .count();
    Ok(EvalReport {
        entries: index.entries().len(),
        in_scope: in_scope.len(),
        out_of_scope: out_of_scope.len(),
        chosen: sweep_row(&scored, threshold),
        sweep: SWEEP.iter().map(|&t| sweep_row(&scored, t)).collect(),
        top1_accuracy: top1 as f32 / in_scope.len().max(1) as f32,
        build_ms,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    })
}

/// Reads the file and builds the index from `train`; returns it with (text, label) queries.
#[allow(clippy::type_complexity)]
pub(crate) fn load_clinc150(
    path: &Path,
) -> Result<(Index, Vec<(String, String)>, Vec<(String, String)>), TriageError> {
    let err = |detail: String| TriageError::Knowledge {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let data: Clinc150 = serde_json::from_str(&text)
        .map_err(|e| err(format!("not CLINC150 train/val JSON: {e}")))?;
    let mut intents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (text, intent) in data.train {
        intents.entry(intent).or_default().push(text);
    }
    if intents.is_empty() {
        return Err(err("`train` is empty".into()));
    }
    let entries = intents
        .into_iter()
        .filter(|(intent, _)| intent != OOS)
        .map(|(intent, phrasings)| Entry {
            question: intent.replace('_', " "),
            answer: format!("(answer for {intent})"),
            id: intent,
            phrasings,
            category: None,
        })
        .collect();
    Ok((Index::build(entries), data.val, data.oos_val))
}

fn sweep_row(scored: &[Scored], threshold: f32) -> SweepRow {
    let (mut in_scope, mut correct, mut oos, mut caught, mut wrong, mut escalated) =
        (0, 0, 0, 0, 0, 0);
    for s in scored {
        let answered = s.predicted.is_some() && s.retrieval.confidence >= threshold;
        let is_oos = s.label == OOS;
        if is_oos {
            oos += 1;
        } else {
            in_scope += 1;
        }
        if !answered {
            escalated += 1;
            if is_oos {
                caught += 1;
            }
        } else if s.predicted.as_deref() == Some(s.label.as_str()) {
            correct += 1;
        } else {
            wrong += 1;
        }
    }
    let ratio = |a: usize, b: usize| a as f32 / b.max(1) as f32;
    SweepRow {
        threshold,
        in_scope_accuracy: ratio(correct, in_scope),
        oos_recall: ratio(caught, oos),
        wrong_answer_rate: ratio(wrong, scored.len()),
        escalation_rate: ratio(escalated, scored.len()),
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pc = |x: f32| format!("{:.1}%", x * 100.0);
        writeln!(
            f,
            "CLINC150: {} entries from train; {} in-scope (val) + {} out-of-scope (oos_val) queries",
            self.entries, self.in_scope, self.out_of_scope
        )?;
        writeln!(f, "threshold                  {:.2}", self.chosen.threshold)?;
        writeln!(
            f,
            "in-scope answer accuracy   {}   (target >= 85%)",
            pc(self.chosen.in_scope_accuracy)
        )?;
        writeln!(
            f,
            "out-of-scope recall        {}   (target >= 70%)",
            pc(self.chosen.oos_recall)
        )?;
        writeln!(
            f,
            "wrong answers (of all)     {}   (target <= 5%)",
            pc(self.chosen.wrong_answer_rate)
        )?;
        writeln!(
            f,
            "escalated (of all)         {}",
            pc(self.chosen.escalation_rate)
        )?;
        writeln!(
            f,
            "retriever top-1 (no threshold) {}",
            pc(self.top1_accuracy)
        )?;
        writeln!(
            f,
            "time per query             p50 {} us, p99 {} us",
            self.p50_us, self.p99_us
        )?;
        writeln!(
            f,
            "load + train from train    {} ms (reading the JSON included)",
            self.build_ms
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "threshold  in-scope acc  oos recall  wrong/all  escalated"
        )?;
        for row in &self.sweep {
            writeln!(
                f,
                "{:>9.2}  {:>12}  {:>10}  {:>9}  {:>9}",
                row.threshold,
                pc(row.in_scope_accuracy),
                pc(row.oos_recall),
                pc(row.wrong_answer_rate),
                pc(row.escalation_rate)
            )?;
        }
        Ok(())
    }
}
