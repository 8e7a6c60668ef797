//! Trimmer tests: discourse's fixtures and the project's multilingual cases.

use super::*;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reply_trimmer")
}

/// Exact matches over the discourse fixtures; prints every miss for whoever tunes rules.
fn measure() -> (usize, usize) {
    let dir = fixtures();
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("emails"))
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .collect();
    entries.sort();
    let (mut total, mut exact) = (0, 0);
    for name in entries {
        let Ok(expected) = std::fs::read_to_string(dir.join("trimmed").join(&name)) else {
            continue;
        };
        let input = std::fs::read_to_string(dir.join("emails").join(&name)).unwrap_or_default();
        total += 1;
        let got = trim_reply(&input);
        if got.trim_end() == expected.trim_end() {
            exact += 1;
        } else {
            println!("MISS {name:?}\n--- expected\n{expected}\n--- got\n{got}\n");
        }
    }
    (exact, total)
}

#[test]
fn discourse_fixtures_exact_match_rate() {
    let (exact, total) = measure();
    let rate = exact as f64 * 100.0 / total.max(1) as f64;
    println!("reply trimmer: {exact}/{total} exact ({rate:.1}%)");
    assert!(total >= 60, "fixtures missing: only {total} found");
    // 63 of 64 at the time of writing (98.4%); the issue asks for at least 90%.
    assert!(rate >= 98.0, "exact-match rate fell to {rate:.1}%");
}

#[test]
fn keeps_new_text_and_drops_quote_and_signature() {
    let mail = "Thanks, that worked!\n\nOn Mon, Jan 6, 2025 at 10:00 AM Support <help@example.com> wrote:\n> How do I reset my password?\n> Go to settings.\n\n-- \nAlice\n";
    assert_eq!(trim_reply(mail), "Thanks, that worked!");
}

#[test]
fn empty_and_whitespace_only_become_empty() {
    assert_eq!(trim_reply(""), "");
    assert_eq!(trim_reply(" \r\n\t\n"), "");
}

#[test]
fn pathological_input_finishes_quickly() {
    let start = std::time::Instant::now();
    let long_line = format!("On {} wrote", "a ".repeat(20_000));
    let _ = trim_reply(&long_line);
    let many_lines = "On Monday\n".repeat(5_000);
    let _ = trim_reply(&many_lines);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_long_mail_is_trimmed_by_its_head_in_bounded_time() {
    // Found by fuzzing: a 250 KB body took seconds; only the head is classified now.
    let history = "> an earlier message in a long thread\n".repeat(6_000);
    let reply = format!(
        "Still broken, see below.\n\nOn Mon, Jan 6, 2025 at 10:00 AM Support <help@example.com> wrote:\n{history}"
    );
    assert!(reply.len() > 200_000);
    let start = std::time::Instant::now();
    assert_eq!(trim_reply(&reply), "Still broken, see below.");
    // Without a cut in the head, a long text is the reply, whole.
    let long = "a line of a very long support request\n".repeat(6_000);
    assert_eq!(trim_reply(&long), long.trim_end());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// One multilingual case: where its format comes from, the mail, the expected reply.
struct Case {
    source: String,
    input: String,
    expected: String,
}

/// Reads a `trim_multilingual/<lang>.txt` file (format in that folder's README).
fn read_cases(text: &str) -> Vec<Case> {
    text.split("### ")
        .filter(|chunk| !chunk.trim().is_empty())
        .filter_map(|chunk| {
            let (source, rest) = chunk.split_once('\n')?;
            let (input, expected) = rest.split_once("=== expected\n")?;
            Some(Case {
                source: source.to_owned(),
                input: input.to_owned(),
                expected: expected.to_owned(),
            })
        })
        .collect()
}

#[test]
fn multilingual_cases_exact_match_rate_per_language() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trim_multilingual");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    let (mut all_exact, mut all_total, mut weak) = (0, 0, Vec::new());
    for path in &files {
        let lang = path.file_stem().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let cases = read_cases(&text);
        let mut exact = 0;
        for case in &cases {
            let got = trim_reply(&case.input);
            if got.trim() == case.expected.trim() {
                exact += 1;
            } else {
                println!(
                    "MISS [{lang}] {}\n--- expected\n{}\n--- got\n{got}\n",
                    case.source,
                    case.expected.trim()
                );
            }
        }
        let rate = exact as f64 * 100.0 / cases.len().max(1) as f64;
        println!("trim [{lang}]: {exact}/{} exact ({rate:.1}%)", cases.len());
        if rate < 90.0 {
            weak.push(format!("{lang} {rate:.1}%"));
        }
        all_exact += exact;
        all_total += cases.len();
    }
    let rate = all_exact as f64 * 100.0 / all_total.max(1) as f64;
    println!("trim [all languages]: {all_exact}/{all_total} exact ({rate:.1}%)");
    assert!(files.len() >= 19, "language files missing: {}", files.len());
    assert!(weak.is_empty(), "languages under 90%: {weak:?}");
}
