//! A compact VADER-style sentiment scorer (Hutto & Gilbert, 2014) with its own lexicon.
//!
//! VADER's rules, kept because they matter in support chats: negation flips and damps a
//! word ("not good"), boosters scale it ("really bad"), a word in CAPS among lower-case
//! words is emphasised, "but" shifts weight to what follows, and exclamation marks
//! intensify. The lexicon (`sentiment_lexicon.txt`) is embedded at compile time; nothing is
//! read at runtime. The compound score is VADER's normalisation `x / sqrt(x² + 15)` in -1..1.

use std::collections::HashMap;
use std::sync::OnceLock;

const LEXICON_TEXT: &str = include_str!("sentiment_lexicon.txt");

/// VADER's constants.
const BOOST: f32 = 0.293;
const CAPS_BOOST: f32 = 0.733;
const NEGATION: f32 = -0.74;
const ALPHA: f32 = 15.0;

/// Emoticons and emoji with a valence; matched on whole whitespace-separated tokens / chars.
const EMOTICONS: &[(&str, f32)] = &[
    (":(", -1.9),
    (":-(", -1.9),
    (":'(", -2.2),
    (">:(", -2.5),
    (":/", -1.1),
    (":-/", -1.1),
    (":|", -0.6),
    (":)", 2.0),
    (":-)", 2.0),
    (":d", 2.3),
    (";)", 1.6),
    ("<3", 1.9),
    ("😡", -2.7),
    ("😠", -2.4),
    ("🤬", -3.0),
    ("😤", -1.9),
    ("😢", -2.0),
    ("😭", -2.1),
    ("😞", -1.9),
    ("😒", -1.6),
    ("👎", -1.8),
    ("💩", -1.5),
    ("🙄", -1.3),
    ("🙂", 1.4),
    ("😊", 2.0),
    ("😀", 2.1),
    ("😃", 2.1),
    ("😄", 2.2),
    ("😍", 2.7),
    ("❤", 2.5),
    ("❤️", 2.5),
    ("👍", 1.8),
    ("🙏", 1.5),
    ("🎉", 2.2),
    ("😂", 1.8),
];

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "cannot",
    "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt",
    "shouldnt", "couldnt", "havent", "hasnt", "hadnt", "aint", "without", "neednt", "mustnt",
];

const BOOSTERS_UP: &[&str] = &[
    "absolutely",
    "completely",
    "deeply",
    "entirely",
    "extremely",
    "fully",
    "greatly",
    "highly",
    "hugely",
    "incredibly",
    "insanely",
    "really",
    "so",
    "seriously",
    "super",
    "totally",
    "truly",
    "utterly",
    "very",
    "most",
    "more",
    "especially",
    "exceptionally",
    "such",
    "too",
    "fucking",
    "freaking",
    "frigging",
];

const BOOSTERS_DOWN: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "kinda",
    "kindof",
    "less",
    "little",
    "marginally",
    "occasionally",
    "partly",
    "scarcely",
    "slightly",
    "somewhat",
    "sorta",
];

fn lexicon() -> &'static HashMap<&'static str, f32> {
    static LEXICON: OnceLock<HashMap<&'static str, f32>> = OnceLock::new();
    LEXICON.get_or_init(|| {
        LEXICON_TEXT
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (word, value) = l.split_once('\t')?;
                Some((word, value.trim().parse().ok()?))
            })
            .collect()
    })
}

/// Looks a lower-case word up, then its inflection-stripped forms.
fn valence_of(word: &str) -> Option<f32> {
    let lex = lexicon();
    if let Some(v) = lex.get(word) {
        return Some(*v);
    }
    for suffix in ["s", "es", "ed", "d", "ing", "ly"] {
        if let Some(base) = word.strip_suffix(suffix) {
            if base.len() >= 3 {
                if let Some(v) = lex.get(base) {
                    return Some(*v);
                }
            }
        }
    }
    None
}

/// Sentiment of a text: VADER's compound score in -1 (very negative) ..= 1 (very positive).
pub fn compound(text: &str) -> f32 {
    // Tokens keep their case (for CAPS emphasis); punctuation is trimmed from word edges.
    struct Token {
        lower: String,
        caps: bool,
        valence: Option<f32>,
    }
    let mut tokens = Vec::new();
    for raw in text.split_whitespace().take(2_000) {
        let raw_lower = raw.to_lowercase();
        if let Some((_, v)) = EMOTICONS.iter().find(|(e, _)| *e == raw_lower) {
            tokens.push(Token {
                lower: raw_lower,
                caps: false,
                valence: Some(*v),
            });
            continue;
        }
        // Emoji glued to words ("thanks🙂") still count.
        for ch in raw.chars() {
            let s = ch.to_string();
            if let Some((_, v)) = EMOTICONS.iter().find(|(e, _)| *e == s) {
                tokens.push(Token {
                    lower: s,
                    caps: false,
                    valence: Some(*v),
                });
            }
        }
        let word: String = raw
            .trim_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .filter(|c| *c != '\'' && *c != '’')
            .collect();
        if word.is_empty() {
            continue;
        }
        let caps = word.chars().any(char::is_alphabetic)
            && !word.chars().any(char::is_lowercase)
            && word.len() > 1;
        let lower = word.to_lowercase();
        let valence = valence_of(&lower);
        tokens.push(Token {
            lower,
            caps,
            valence,
        });
    }
    // CAPS only emphasises when the rest of the text is not shouting too.
    let mixed_caps = tokens.iter().any(|t| t.caps) && tokens.iter().any(|t| !t.caps);
    let but_at = tokens.iter().position(|t| t.lower == "but");
    let mut total = 0.0;
    let mut any = false;
    for (i, token) in tokens.iter().enumerate() {
        let Some(mut v) = token.valence else { continue };
        if BOOSTERS_UP.contains(&token.lower.as_str())
            || BOOSTERS_DOWN.contains(&token.lower.as_str())
        {
            continue;
        }
        any = true;
        if token.caps && mixed_caps {
            v += CAPS_BOOST * v.signum();
        }
        // Up to three preceding words: boosters fade with distance, negations flip.
        for back in 1..=3usize.min(i) {
            let prev = &tokens[i - back];
            let fade = [1.0, 0.95, 0.9][back - 1];
            if BOOSTERS_UP.contains(&prev.lower.as_str()) {
                let b = if prev.caps && mixed_caps {
                    BOOST + CAPS_BOOST
                } else {
                    BOOST
                };
                v += b * fade * v.signum();
            } else if BOOSTERS_DOWN.contains(&prev.lower.as_str()) {
                v -= BOOST * fade * v.signum();
            }
            if NEGATIONS.contains(&prev.lower.as_str()) {
                v *= NEGATION;
            }
        }
        if let Some(at) = but_at {
            v *= if i < at {
                0.5
            } else if i > at {
                1.5
            } else {
                1.0
            };
        }
        total += v;
    }
    if !any {
        return 0.0;
    }
    let exclamations = text.chars().filter(|c| *c == '!').count().min(4) as f32;
    if total != 0.0 {
        total += exclamations * 0.292 * total.signum();
    }
    total / (total * total + ALPHA).sqrt()
}

#[cfg(test)]
mod tests {
    use super::compound;

    #[test]
    fn polarity_and_vader_rules() {
        assert!(compound("This is great, thank you!") > 0.5);
        assert!(compound("This is terrible and useless") < -0.5);
        assert!(compound("not good") < 0.0);
        assert!(compound("really bad") < compound("bad"));
        assert!(compound("this is BAD and I am upset") < compound("this is bad and I am upset"));
        assert!(compound("it was good but the support is awful") < 0.0);
        assert!(compound("awful!!!") < compound("awful"));
        assert_eq!(compound(""), 0.0);
        assert_eq!(compound("how do I export my data"), 0.0);
        assert!(compound("😡😡") < -0.5);
    }

    #[test]
    fn lexicon_parses_every_line() {
        let lines = super::LEXICON_TEXT
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(super::lexicon().len(), lines);
    }
}
