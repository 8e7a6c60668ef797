//! `switchboard eval`: measures the embedded answerer on CLINC150.
//!
//! The confidence calibration is fitted on `train` only (see `calibrate.rs`), so the
//! figures reported here are held out.
//!
//! The knowledge base is built from `train` (one entry per intent, its training utterances
//! as phrasings); the answerer then sees `val` (in scope) and `oos_val` (out of scope).
//! An in-scope query is *correct* when answered with its intent's entry; an out-of-scope
//! query is *caught* when the confidence falls below the threshold (an escalation). A
//! *wrong answer* is an in-scope query answered with another intent's entry, or an
//! out-of-scope query answered at all: that is what a customer would see go wrong.
//!
//! CLINC150 `val` is 3% out of scope; real support traffic asks far more the knowledge base
//! cannot answer. So the rates "of all" are weighted to a stated out-of-scope share
//! (`--oos-share`): wrong = (1-share) * in-scope wrong rate + share * out-of-scope answered
//! rate, and the same for escalations. Both parts only fall as the threshold rises, so the
//! lowest threshold meeting `--max-wrong` is well defined; it is printed as the recommendation.
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

/// Thresholds searched for the recommendation: 0.00 to 1.00 in steps of 0.01.
const GRID_STEPS: u32 = 100;

/// Out-of-scope share assumed unless stated: real support traffic, not CLINC150 `val`'s 3%.
pub const DEFAULT_OOS_SHARE: f32 = 0.2;
/// Wrong-answer rate the recommended threshold must stay at or under, unless stated.
pub const DEFAULT_MAX_WRONG: f32 = 0.05;

/// What to report and how to weigh it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalOptions {
    /// Threshold to report at; `None`: the built-in default.
    pub threshold: Option<f32>,
    /// Share of questions the knowledge base cannot answer, in [0, 1).
    pub oos_share: f32,
    /// Target wrong-answer rate, in (0, 1).
    pub max_wrong: f32,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            threshold: None,
            oos_share: DEFAULT_OOS_SHARE,
            max_wrong: DEFAULT_MAX_WRONG,
        }
    }
}

impl EvalOptions {
    /// Rejects values the weighting cannot use (NaN included), naming the option.
    pub fn validate(&self) -> Result<(), TriageError> {
        let bad =
            |option: &'static str, detail: String| Err(TriageError::EvalOption { option, detail });
        if let Some(t) = self.threshold {
            if !(0.0..=1.0).contains(&t) {
                return bad("--threshold", format!("must be within [0, 1], got {t}"));
            }
        }
        if !(0.0..1.0).contains(&self.oos_share) {
            return bad(
                "--oos-share",
                format!(
                    "must be within [0, 1) (the share of questions the knowledge base cannot answer, e.g. 0.2), got {}",
                    self.oos_share
                ),
            );
        }
        if !(self.max_wrong > 0.0 && self.max_wrong < 1.0) {
            return bad(
                "--max-wrong",
                format!(
                    "must be within (0, 1) (a rate, e.g. 0.05 for 5%), got {}",
                    self.max_wrong
                ),
            );
        }
        Ok(())
    }
}

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
    /// In-scope queries answered with another entry / in-scope queries.
    pub in_scope_wrong_rate: f32,
    /// Out-of-scope queries escalated / out-of-scope queries.
    pub oos_recall: f32,
    /// Wrong answers at the report's out-of-scope share (see the module doc).
    pub wrong_answer_rate: f32,
    /// Escalations at the report's out-of-scope share.
    pub escalation_rate: f32,
}

impl SweepRow {
    /// The same measurement with the "of all" rates weighted to `oos_share`.
    pub fn weighted(&self, oos_share: f32) -> SweepRow {
        let in_scope = 1.0 - oos_share;
        let in_scope_escalated = 1.0 - self.in_scope_accuracy - self.in_scope_wrong_rate;
        SweepRow {
            wrong_answer_rate: in_scope * self.in_scope_wrong_rate
                + oos_share * (1.0 - self.oos_recall),
            escalation_rate: in_scope * in_scope_escalated.max(0.0) + oos_share * self.oos_recall,
            ..self.clone()
        }
    }
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
    /// Out-of-scope share the "of all" rates are weighted to.
    pub oos_share: f32,
    /// Target wrong-answer rate for the recommendation.
    pub max_wrong: f32,
    /// The figures at the chosen threshold.
    pub chosen: SweepRow,
    /// The figures across [`SWEEP`] thresholds.
    pub sweep: Vec<SweepRow>,
    /// The lowest threshold (in steps of 0.01) whose wrong-answer rate is at most
    /// `max_wrong`; `None` when even escalating everything answered does not get there.
    pub recommended: Option<SweepRow>,
    /// Every threshold from 0.00 to 1.00 in steps of 0.01, for reweighting.
    pub grid: Vec<SweepRow>,
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

/// Evaluates the embedded answerer on CLINC150 as `options` say.
pub fn eval_clinc150(path: &Path, options: &EvalOptions) -> Result<EvalReport, TriageError> {
    options.validate()?;
    let threshold = options
        .threshold
        .unwrap_or_else(|| TriageConfig::default().confidence_threshold);
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
    let report = EvalReport {
        entries: index.entries().len(),
        in_scope: in_scope.len(),
        out_of_scope: out_of_scope.len(),
        oos_share: options.oos_share,
        max_wrong: options.max_wrong,
        chosen: sweep_row(&scored, threshold),
        sweep: SWEEP.iter().map(|&t| sweep_row(&scored, t)).collect(),
        recommended: None,
        grid: (0..=GRID_STEPS)
            .map(|i| sweep_row(&scored, i as f32 / GRID_STEPS as f32))
            .collect(),
        top1_accuracy: top1 as f32 / in_scope.len().max(1) as f32,
        build_ms,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    };
    report.reweighted(options.oos_share, options.max_wrong)
}

impl EvalReport {
    /// The same measurement weighted to another out-of-scope share and target, without
    /// asking the questions again.
    pub fn reweighted(&self, oos_share: f32, max_wrong: f32) -> Result<EvalReport, TriageError> {
        EvalOptions {
            threshold: None,
            oos_share,
            max_wrong,
        }
        .validate()?;
        let grid: Vec<SweepRow> = self.grid.iter().map(|r| r.weighted(oos_share)).collect();
        Ok(EvalReport {
            oos_share,
            max_wrong,
            chosen: self.chosen.weighted(oos_share),
            sweep: self.sweep.iter().map(|r| r.weighted(oos_share)).collect(),
            recommended: grid
                .iter()
                .find(|r| r.wrong_answer_rate <= max_wrong)
                .cloned(),
            grid,
            ..self.clone()
        })
    }
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
    let (mut in_scope, mut correct, mut oos, mut caught, mut wrong_in_scope) = (0, 0, 0, 0, 0);
    for s in scored {
        let answered = s.predicted.is_some() && s.retrieval.confidence >= threshold;
        let is_oos = s.label == OOS;
        if is_oos {
            oos += 1;
        } else {
            in_scope += 1;
        }
        if !answered {
            if is_oos {
                caught += 1;
            }
        } else if s.predicted.as_deref() == Some(s.label.as_str()) {
            correct += 1;
        } else if !is_oos {
            wrong_in_scope += 1;
        }
    }
    let ratio = |a: usize, b: usize| a as f32 / b.max(1) as f32;
    // The "of all" rates are filled in by `SweepRow::weighted`.
    SweepRow {
        threshold,
        in_scope_accuracy: ratio(correct, in_scope),
        in_scope_wrong_rate: ratio(wrong_in_scope, in_scope),
        oos_recall: ratio(caught, oos),
        wrong_answer_rate: 0.0,
        escalation_rate: 0.0,
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
        let share = pc(self.oos_share);
        writeln!(
            f,
            "rates \"of all\" weighted to {share} out-of-scope questions (--oos-share)"
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
            "wrong answers (of all)     {}   (target <= {})",
            pc(self.chosen.wrong_answer_rate),
            pc(self.max_wrong)
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
        match &self.recommended {
            Some(row) => writeln!(
                f,
                "recommended threshold      {:.2}   (lowest meeting <= {} wrong at {share} out of scope: wrong {}, in-scope accuracy {}, escalated {})",
                row.threshold,
                pc(self.max_wrong),
                pc(row.wrong_answer_rate),
                pc(row.in_scope_accuracy),
                pc(row.escalation_rate)
            )?,
            None => writeln!(
                f,
                "recommended threshold      none   (no threshold keeps wrong answers <= {} at {share} out of scope)",
                pc(self.max_wrong)
            )?,
        }
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
