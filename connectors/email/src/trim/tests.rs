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

#[test]
fn keeps_customer_text_that_only_looks_like_a_header() {
    // Each stays whole: a lone label, a colon without a verb of writing, a verb with the
    // customer as subject, and a short line naming a mail app without a sender's phrase.
    let own = [
        "From: my phone the app crashes.\nIt happened twice.",
        "Subject: refund\nI want my money back, see the order from 2025-01-06.",
        "I wrote to you on 2025-01-06:\n- the invoice is wrong\n- the address too",
        "Here is what my colleague said at 10:00:\nthe printer is offline.",
        "What I tried on 6.1.2025:\nlogging out\nlogging in",
        "The mail was sent yesterday.\nIt never arrived.",
        "Get me a refund please.\nThe Outlook plugin is broken.",
        "On Monday I wrote to support at 10:00:\nno answer yet.",
        "Sent from my desk, which is much easier than from my mobile phone.\nThanks.",
        "From my experience with the app, the sync fails\nwhenever I am offline.",
        "Order: 1234\nDate: 2025-01-06\nSubject: the refund I asked for",
        "Ich schrieb Ihnen am 06.01.2025:\nkeine Antwort bisher.",
    ];
    for text in own {
        assert_eq!(trim_reply(text), text, "over-trimmed");
    }
}

#[test]
fn recognises_more_client_formats() {
    let reply = "Works now, thanks.";
    let tails = [
        // Gmail forward, Thunderbird forward, Yahoo's older separator.
        "---------- Forwarded message ---------\nFrom: Support <help@example.com>\nDate: Mon, Jan 6, 2025 at 10:00 AM\nSubject: Test\nTo: <jane@example.org>\n\nHello",
        "-------- Forwarded Message --------\nSubject: Test\nDate: Mon, 6 Jan 2025 10:00:00 +0100\nFrom: Support <help@example.com>\nTo: jane@example.org\n\nHello",
        "----- Original Message -----\nFrom: Support <help@example.com>\nTo: jane@example.org\nSent: Monday, January 6, 2025 10:00 AM\nSubject: Test\n\nHello",
        // Apple Mail forwards in German and Japanese.
        "Anfang der weitergeleiteten Nachricht:\n\nVon: Support <help@example.com>\nBetreff: Test\nDatum: 6. Januar 2025 um 10:00:00 MEZ\nAn: erika@example.org\n\nHallo",
        "転送されたメッセージ：\n\n差出人: サポート <help@example.com>\n件名: テスト\n日付: 2025年1月6日 10:00:00 JST\n宛先: taro@example.org\n\nこんにちは",
        // Yahoo Mail's attribution line.
        "On Monday, January 6, 2025, 10:00:00 AM GMT+1, Support <help@example.com> wrote:\n\n\nHello",
        // Header wrapped before the name.
        "On Mon, Jan 6, 2025 at 10:00 AM\nSupport Team <help@example.com> wrote:\n> Hello",
        // Outlook in Spanish with "Enviado el", in French with no-break spaces before colons.
        "De: Soporte [mailto:help@example.com]\nEnviado el: lunes, 6 de enero de 2025 10:00\nPara: Juan <juan@example.org>\nCC: Ana <ana@example.org>\nAsunto: Test\n\nHola",
        "De\u{a0}: Support\nEnvoyé\u{a0}: lundi 6 janvier 2025 10:00\nÀ\u{a0}: Jeanne\nObjet\u{a0}: Test\n\nBonjour",
        // Outlook in Japanese with full-width colons, QQ Mail's block.
        "差出人： サポート <help@example.com>\n送信日時： 2025年1月6日 10:00\n宛先： 山田 <taro@example.org>\n件名： テスト\n\nこんにちは",
        "------------------&nbsp;原始邮件&nbsp;------------------\n发件人: \"支持\"<help@example.com>;\n发送时间: 2025年1月6日(星期一) 上午10:00\n收件人: \"张三\"<zhang@example.org>;\n主题: 测试\n\n你好",
    ];
    for tail in tails {
        let mail = format!("{reply}\n\n{tail}");
        assert_eq!(trim_reply(&mail), reply, "not trimmed:\n{tail}");
    }
}
