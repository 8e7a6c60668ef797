//! The knowledge base: markdown files of questions and answers under `knowledge_dir`.
//!
//! # Format
//!
//! Every `*.md` file in the folder (not recursive, sorted by name) holds entries:
//!
//! ```markdown
//! +++
//! category = "account"        # optional TOML front matter: defaults for the file
//! +++
//!
//! # Anything before the first `##` heading is a free comment for editors.
//!
//! ## How do I reset my password?
//! Id: password-reset          (optional; default: <file stem>/<slug of the question>)
//! Category: account           (optional; overrides the file's category)
//! Also:
//! - forgot my password
//! - can't log in, my password doesn't work
//!
//! The answer: every line up to the next `##` heading, markdown kept as written.
//! ```
//!
//! Front matter keys: `category` (string) and `enabled` (bool, default true: a file being
//! drafted can be switched off). Unknown keys are errors, like everywhere in our config.
//! Any problem (broken front matter, an entry without an answer, a duplicate id) is a
//! [`TriageError::Knowledge`] naming the file, so the gateway refuses to start with a KB it
//! would answer from wrongly.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::TriageError;

/// One question and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Stable id, cited in `sources`.
    pub id: String,
    /// The question as the heading states it.
    pub question: String,
    /// Other ways customers ask it.
    pub phrasings: Vec<String>,
    /// The answer sent to the customer.
    pub answer: String,
    /// Category, when set (e.g. `billing`, `security`).
    pub category: Option<String>,
}

/// Front matter of one file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    #[serde(default)]
    category: Option<String>,
    #[serde(default = "enabled_default")]
    enabled: bool,
}

fn enabled_default() -> bool {
    true
}

impl Default for FrontMatter {
    fn default() -> Self {
        FrontMatter {
            category: None,
            enabled: true,
        }
    }
}

/// Loads every `*.md` file of `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Entry>, TriageError> {
    let err = |path: &Path, detail: String| TriageError::Knowledge {
        path: path.display().to_string(),
        detail,
    };
    let listing = std::fs::read_dir(dir)
        .map_err(|e| err(dir, format!("cannot read knowledge folder: {e}")))?;
    let mut files = Vec::new();
    for item in listing {
        let item = item.map_err(|e| err(dir, format!("cannot list knowledge folder: {e}")))?;
        let path = item.path();
        if path.extension().and_then(|e| e.to_str()) == Some("md") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut entries = Vec::new();
    let mut ids = BTreeSet::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).map_err(|e| err(&path, format!("cannot read: {e}")))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("kb");
        for entry in parse_file(stem, &text).map_err(|detail| err(&path, detail))? {
            if !ids.insert(entry.id.clone()) {
                return Err(err(&path, format!("duplicate entry id `{}`", entry.id)));
            }
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// The folder's entries followed by the learned ones (kept in Redis, see `crate::learning`).
/// A learned entry whose id the folder already has is left out: the folder wins, so a
/// `learned.md` from an older version, or an export committed to the folder, can stay there
/// while the same entries are in Redis.
pub fn merge_learned(mut base: Vec<Entry>, learned: Vec<Entry>) -> Vec<Entry> {
    let mut ids: BTreeSet<String> = base.iter().map(|entry| entry.id.clone()).collect();
    for entry in learned {
        if ids.insert(entry.id.clone()) {
            base.push(entry);
        }
    }
    base
}

/// Parses one file's text; `stem` prefixes default ids. Errors are messages without the path.
pub fn parse_file(stem: &str, text: &str) -> Result<Vec<Entry>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (front, body, body_line) = split_front_matter(text)?;
    if !front.enabled {
        return Ok(Vec::new());
    }
    let mut entries = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    let mut in_fence = false;
    for (n, line) in body.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && line.starts_with("## ") {
            if let Some((at, lines)) = current.take() {
                entries.push(parse_entry(stem, &front, at, &lines)?);
            }
            current = Some((body_line + n, vec![line]));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some((at, lines)) = current.take() {
        entries.push(parse_entry(stem, &front, at, &lines)?);
    }
    Ok(entries)
}

/// Splits `+++` TOML front matter off; returns it, the body and the body's first line number.
fn split_front_matter(text: &str) -> Result<(FrontMatter, &str, usize), String> {
    let Some(rest) = text.strip_prefix("+++") else {
        return Ok((FrontMatter::default(), text, 1));
    };
    let rest = rest.strip_prefix('\r').unwrap_or(rest);
    let Some(rest) = rest.strip_prefix('\n') else {
        return Err("front matter: `+++` must be alone on the first line".into());
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let toml_text = &rest[..offset];
            let front: FrontMatter =
                toml::from_str(toml_text).map_err(|e| format!("front matter: {}", e.message()))?;
            let body = &rest[offset + line.len()..];
            let body_line = 2 + toml_text.lines().count() + 1;
            return Ok((front, body, body_line));
        }
        offset += line.len();
    }
    Err("front matter: opening `+++` has no closing `+++` line".into())
}

/// Parses the lines of one `## question` section starting at line `at`.
fn parse_entry(
    stem: &str,
    front: &FrontMatter,
    at: usize,
    lines: &[&str],
) -> Result<Entry, String> {
    let question = lines[0].trim_start_matches('#').trim().to_string();
    if question.is_empty() {
        return Err(format!("line {at}: empty question heading"));
    }
    let mut id = None;
    let mut category = front.category.clone();
    let mut phrasings = Vec::new();
    let mut rest = &lines[1..];
    // Metadata lines come first, each optional, in any order.
    while let Some(line) = rest.first() {
        let trimmed = line.trim();
        if let Some(value) = trimmed.strip_prefix("Id:") {
            id = Some(value.trim().to_string());
        } else if let Some(value) = trimmed.strip_prefix("Category:") {
            category = Some(value.trim().to_string());
        } else if trimmed == "Also:" {
            rest = &rest[1..];
            while let Some(item) = rest.first().and_then(|l| l.trim().strip_prefix("- ")) {
                let item = item.trim();
                if !item.is_empty() {
                    phrasings.push(item.to_string());
                }
                rest = &rest[1..];
            }
            continue;
        } else if !trimmed.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    let answer = rest.join("\n").trim().to_string();
    if answer.is_empty() {
        return Err(format!("line {at}: question `{question}` has no answer"));
    }
    let id = match id {
        Some(id) if !id.is_empty() => id,
        Some(_) => return Err(format!("line {at}: empty `Id:`")),
        None => format!("{stem}/{}", slug(&question)),
    };
    let category = category.filter(|c| !c.is_empty());
    Ok(Entry {
        id,
        question,
        phrasings,
        answer,
        category,
    })
}

/// `How do I reset my password?` -> `how-do-i-reset-my-password`.
fn slug(text: &str) -> String {
    super::text::words(text).join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "+++\ncategory = \"account\"\n+++\nNotes for editors.\n\n## How do I reset my password?\nAlso:\n- forgot password\n- can't log in\n\nGo to **Settings**.\n\n## Where are invoices?\nId: invoices\nCategory: billing\n\nUnder Billing.\n";

    #[test]
    fn parses_entries_with_metadata_and_defaults() {
        let entries = parse_file("account", SAMPLE).expect("valid sample");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "account/how-do-i-reset-my-password");
        assert_eq!(entries[0].phrasings, ["forgot password", "can't log in"]);
        assert_eq!(entries[0].answer, "Go to **Settings**.");
        assert_eq!(entries[0].category.as_deref(), Some("account"));
        assert_eq!(entries[1].id, "invoices");
        assert_eq!(entries[1].category.as_deref(), Some("billing"));
    }

    #[test]
    fn broken_front_matter_is_an_error() {
        assert!(parse_file("x", "+++\ncategory = \n+++\n## Q\nA\n").is_err());
        assert!(parse_file("x", "+++\ncategory = \"a\"\n## Q\nA\n").is_err());
        assert!(parse_file("x", "+++\ncolour = \"a\"\n+++\n## Q\nA\n").is_err());
    }

    #[test]
    fn question_without_answer_is_an_error() {
        let err = parse_file("x", "## Q one\nAlso:\n- a\n\n## Q two\nanswer\n").unwrap_err();
        assert!(err.contains("Q one"), "{err}");
    }

    #[test]
    fn the_folder_wins_over_a_learned_entry_with_the_same_id() {
        let base = parse_file("faq", "## Q one\nId: learned-1\nFrom the folder.\n").unwrap();
        let learned = parse_file(
            "learned",
            "## Q one\nId: learned-1\nFrom Redis.\n\n## Q two\nId: learned-2\nNew.\n",
        )
        .unwrap();
        let merged = merge_learned(base, learned);
        let answers: Vec<&str> = merged.iter().map(|e| e.answer.as_str()).collect();
        assert_eq!(answers, ["From the folder.", "New."]);
    }

    #[test]
    fn disabled_file_has_no_entries() {
        assert!(parse_file("x", "+++\nenabled = false\n+++\n## Q\nA\n")
            .unwrap()
            .is_empty());
    }
}
