//! Knowledge gaps: the escalated questions, grouped by what they ask.
//!
//! Customers ask the same thing in many words, so counting exact strings would hide the
//! real gaps. Each question becomes a set of content words (lowercased, stopwords dropped,
//! plurals folded); two questions are alike when the Jaccard overlap of their sets reaches
//! a threshold. Clustering is greedy single-link in arrival order: simple, deterministic and
//! fast enough for the few thousand escalations a report window holds.

use std::collections::{BTreeMap, BTreeSet};

/// Two questions whose content-word sets overlap at least this much are one topic.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Questions beyond this many are not clustered (the cost is quadratic).
const MAX_QUESTIONS: usize = 5_000;

/// How many example questions a cluster keeps besides its representative.
const EXAMPLES: usize = 3;

/// One escalated question and why it escalated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalatedQuestion {
    /// What the customer wrote.
    pub text: String,
    /// The escalation reason (`low_confidence`, `human_requested`, ...).
    pub reason: String,
}

/// A group of escalated questions that ask the same thing.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionCluster {
    /// How many escalations asked it.
    pub size: usize,
    /// The member most like the others: the cluster's title.
    pub representative: String,
    /// Other distinct wordings, most frequent first.
    pub examples: Vec<String>,
    /// Escalation reasons of the members, with counts.
    pub reasons: BTreeMap<String, usize>,
}

impl QuestionCluster {
    /// The most common reason (ties go to the alphabetically first, for stable output).
    pub fn top_reason(&self) -> &str {
        let mut best: Option<(&String, &usize)> = None;
        for (reason, count) in &self.reasons {
            if best.is_none_or(|(_, top)| count > top) {
                best = Some((reason, count));
            }
        }
        best.map(|(reason, _)| reason.as_str()).unwrap_or("")
    }
}

/// Clusters `questions`, largest cluster first; blank questions are ignored.
pub fn cluster_questions(questions: &[EscalatedQuestion], threshold: f64) -> Vec<QuestionCluster> {
    let items: Vec<(&EscalatedQuestion, BTreeSet<String>)> = questions
        .iter()
        .filter(|question| !question.text.trim().is_empty())
        .take(MAX_QUESTIONS)
        .map(|question| (question, content_words(&question.text)))
        .collect();
    let mut clusters: Vec<Vec<usize>> = Vec::new();
    for (index, (_, words)) in items.iter().enumerate() {
        let home = clusters.iter().position(|members| {
            members
                .iter()
                .any(|&member| alike(words, &items[member].1, threshold))
        });
        match home {
            Some(cluster) => clusters[cluster].push(index),
            None => clusters.push(vec![index]),
        }
    }
    let mut out: Vec<QuestionCluster> = clusters
        .iter()
        .map(|members| summarize(members, &items))
        .collect();
    // Stable sort: equal sizes keep first-seen order.
    out.sort_by_key(|cluster| std::cmp::Reverse(cluster.size));
    out
}

fn alike(a: &BTreeSet<String>, b: &BTreeSet<String>, threshold: f64) -> bool {
    // Questions made only of stopwords ("help?") are alike only when written identically.
    if a.is_empty() || b.is_empty() {
        return a.is_empty() && b.is_empty();
    }
    jaccard(a, b) >= threshold
}

/// |a ∩ b| / |a ∪ b|, 0 for two empty sets.
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let shared = a.intersection(b).count();
    let union = a.len() + b.len() - shared;
    if union == 0 {
        0.0
    } else {
        shared as f64 / union as f64
    }
}

fn summarize(
    members: &[usize],
    items: &[(&EscalatedQuestion, BTreeSet<String>)],
) -> QuestionCluster {
    // The medoid: the member with the highest total similarity to the others.
    let representative = members
        .iter()
        .copied()
        .max_by(|&a, &b| {
            let score = |i: usize| -> f64 {
                members
                    .iter()
                    .map(|&j| jaccard(&items[i].1, &items[j].1))
                    .sum()
            };
            score(a)
                .partial_cmp(&score(b))
                .unwrap_or(std::cmp::Ordering::Equal)
                // On a tie prefer the earlier question, so the result does not depend on max_by's tie rule.
                .then(b.cmp(&a))
        })
        .map(|i| items[i].0.text.trim().to_owned())
        .unwrap_or_default();
    let mut wordings: BTreeMap<String, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for &member in members {
        let (question, _) = items[member];
        *wordings.entry(question.text.trim().to_owned()).or_default() += 1;
        *reasons.entry(question.reason.clone()).or_default() += 1;
    }
    let mut examples: Vec<(String, usize)> = wordings
        .into_iter()
        .filter(|(text, _)| *text != representative)
        .collect();
    examples.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    QuestionCluster {
        size: members.len(),
        representative,
        examples: examples
            .into_iter()
            .take(EXAMPLES)
            .map(|(text, _)| text)
            .collect(),
        reasons,
    }
}

/// The words that carry a question's topic: lowercased, stopwords dropped, plurals folded.
pub fn content_words(text: &str) -> BTreeSet<String> {
    text.split(|ch: char| !ch.is_alphanumeric() && ch != '\'')
        .map(|word| word.replace('\'', "").to_lowercase())
        .filter(|word| !word.is_empty() && !STOPWORDS.contains(&word.as_str()))
        .map(|word| fold_plural(&word))
        .collect()
}

fn fold_plural(word: &str) -> String {
    // "charges" and "charge", "invoices" and "invoice" must meet; "status" and "was" must not break.
    if word.len() > 3
        && word.is_ascii()
        && word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
    {
        word[..word.len() - 1].to_owned()
    } else {
        word.to_owned()
    }
}

/// Function words that say nothing about the topic of a support question.
const STOPWORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "but", "by", "can", "cant",
    "could", "did", "do", "does", "dont", "for", "from", "get", "got", "has", "have", "hello",
    "help", "hey", "hi", "how", "i", "im", "in", "is", "it", "its", "just", "like", "me", "my",
    "need", "of", "on", "or", "our", "please", "so", "that", "the", "there", "this", "to", "was",
    "we", "what", "whats", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your",
];
