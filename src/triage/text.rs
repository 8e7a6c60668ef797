//! Text normalisation shared by the retriever and the policies.
//!
//! Two views of a message: [`words`] (lowercased word tokens, no stemming: what phrase
//! patterns match against) and [`terms`] (stopwords dropped, synonyms conflated, lightly
//! stemmed: what the BM25 index scores). Both views must be computed the same way for the
//! knowledge base and for customer messages, which is why they live in one place.

/// Lowercased word tokens: runs of letters and digits; apostrophes inside a word are
/// dropped so "can't" and "cant" are one token, as customers type both.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() {
            // Most text is ASCII; the full Unicode lowercasing below is several times slower.
            current.push(ch.to_ascii_lowercase());
        } else if ch.is_alphanumeric() {
            current.extend(ch.to_lowercase());
        } else if (ch == '\'' || ch == '’') && !current.is_empty() {
            // inside a word: skip, keep accumulating
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// English function words that carry no topic; dropped when comparing two messages.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him",
    "his", "i", "if", "im", "in", "into", "is", "it", "its", "itself", "ive", "just", "me",
    "might", "my", "myself", "of", "on", "or", "our", "ours", "please", "pls", "plz", "she",
    "should", "so", "some", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "too", "u", "ur", "us", "very", "was", "we", "were", "will",
    "with", "would", "you", "your", "yours", "hi", "hello", "hey", "thanks", "thank", "also",
    "would", "id", "youre", "ill", "okay", "ok",
];

/// True for a word [`terms`] drops.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// Multi-word phrases and spellings that mean one thing, conflated to one canonical term
/// before stemming so "sign in", "log-in" and "login" meet in the index.
/// Each entry: (words of the phrase, canonical term).
const PHRASES: &[(&[&str], &str)] = &[
    (&["log", "in"], "login"),
    (&["logon"], "login"),
    (&["sign", "in"], "login"),
    (&["signin"], "login"),
    (&["log", "on"], "login"),
    (&["sign", "up"], "signup"),
    (&["two", "factor"], "2fa"),
    (&["2", "factor"], "2fa"),
    (&["two", "step"], "2fa"),
    (&["mfa"], "2fa"),
    (&["authenticator"], "2fa"),
    (&["pwd"], "password"),
    (&["passcode"], "password"),
    (&["passwd"], "password"),
    (&["pw"], "password"),
    (&["money", "back"], "refund"),
    (&["reimbursement"], "refund"),
    (&["reimburse"], "refund"),
    (&["receipt"], "invoice"),
    (&["receipts"], "invoice"),
    (&["bill"], "invoice"),
    (&["bills"], "invoice"),
    (&["unsubscribe"], "cancel"),
    (&["terminate"], "cancel"),
    (&["e", "mail"], "email"),
    (&["e-mail"], "email"),
    (&["mail"], "email"),
    (&["how", "much"], "pricing"),
    (&["price"], "pricing"),
    (&["prices"], "pricing"),
    (&["cost"], "pricing"),
    (&["costs"], "pricing"),
    (&["down"], "outage"),
    (&["offline"], "outage"),
    (&["cancelled"], "cancel"),
    (&["cancelling"], "cancel"),
    (&["cancellation"], "cancel"),
    (&["ratelimit"], "ratelimit"),
    (&["rate", "limit"], "ratelimit"),
    (&["rate", "limits"], "ratelimit"),
    (&["rate", "limited"], "ratelimit"),
    (&["throttled"], "ratelimit"),
    (&["429"], "ratelimit"),
];

/// Scoring terms of a text: words with phrases conflated, stemmed. Stopwords are kept:
/// BM25's IDF already discounts them, and in short questions they carry meaning
/// ("call *me* Sam" vs "call *you* Sam"); dropping them cost 5 points on CLINC150.
pub fn terms(text: &str) -> Vec<String> {
    terms_with(text, false)
}

/// Topic terms of a text: [`terms`] without stopwords, for comparing two messages.
pub fn content_terms(text: &str) -> Vec<String> {
    terms_with(text, true)
}

fn terms_with(text: &str, drop_stopwords: bool) -> Vec<String> {
    let tokens = words(text);
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    'outer: while i < tokens.len() {
        for (phrase, canonical) in PHRASES {
            let n = phrase.len();
            if i + n <= tokens.len()
                && tokens[i..i + n]
                    .iter()
                    .zip(phrase.iter())
                    .all(|(a, b)| a == b)
            {
                out.push((*canonical).to_string());
                i += n;
                continue 'outer;
            }
        }
        let word = &tokens[i];
        if !drop_stopwords || !is_stopword(word) {
            out.push(stem(word));
        }
        i += 1;
    }
    out
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// A light English stemmer (plural, -ed, -ing, -ly, a few derivational endings): enough to
/// meet "resetting"/"reset" and "invoices"/"invoice" without Porter's over-stemming.
/// Non-ASCII words are returned unchanged so other languages are not mangled.
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.len() <= 3 || word.bytes().any(|b| b.is_ascii_digit()) {
        return word.to_string();
    }
    let mut w = word.to_string();
    // Plurals.
    if w.ends_with("sses") {
        w.truncate(w.len() - 2);
    } else if w.ends_with("ies") && w.len() > 4 {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.truncate(w.len() - 1);
    }
    // Derivational and verbal endings, longest first; the stem must keep a vowel.
    for (suffix, replacement) in [
        ("ational", "ate"),
        ("ization", "ize"),
        ("fulness", "ful"),
        ("iveness", "ive"),
        ("ously", "ous"),
        ("ments", "ment"),
        ("ement", "e"),
        ("ingly", ""),
        ("edly", ""),
        ("ing", ""),
        ("ed", ""),
        ("ly", ""),
    ] {
        if let Some(base) = w.strip_suffix(suffix) {
            if base.len() >= 3 && base.bytes().any(is_vowel) {
                let mut base = base.to_string();
                base.push_str(replacement);
                if replacement.is_empty() {
                    base = undouble(base);
                }
                w = base;
            }
            break;
        }
    }
    // A trailing "e" is dropped so "update"/"updated" and "cancel"/"canceled" agree.
    if w.len() > 4 && w.ends_with('e') {
        w.truncate(w.len() - 1);
    }
    w
}

/// "stopp" -> "stop", "resett" -> "reset": verbs double their last consonant before -ing/-ed.
fn undouble(mut base: String) -> String {
    let b = base.as_bytes();
    let n = b.len();
    if n >= 2
        && b[n - 1] == b[n - 2]
        && !is_vowel(b[n - 1])
        && !matches!(b[n - 1], b'l' | b's' | b'z')
    {
        base.truncate(n - 1);
    }
    base
}

/// A pattern's words, normalised like a message's, each with whether it is a prefix (`word*`).
pub type PatternParts = std::rc::Rc<[(String, bool)]>;

/// Patterns come from config and a few constant lists, so there are few of them, but they
/// are matched against every message and its history: normalising each once per thread
/// instead of on every match took a fifth of the gateway's time per message.
const PATTERN_CACHE_LIMIT: usize = 4096;

thread_local! {
    static PATTERNS: std::cell::RefCell<std::collections::HashMap<String, PatternParts>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The normalised words of `pattern` (see [`matches_pattern`]).
pub fn pattern_parts(pattern: &str) -> PatternParts {
    PATTERNS.with(|cache| {
        if let Some(parts) = cache.borrow().get(pattern) {
            return parts.clone();
        }
        let parts: PatternParts = pattern
            .split_whitespace()
            .filter_map(|raw| {
                let prefix = raw.ends_with('*');
                let word = words(raw.trim_end_matches('*')).join("");
                (!word.is_empty()).then_some((word, prefix))
            })
            .collect();
        let mut cache = cache.borrow_mut();
        if cache.len() >= PATTERN_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), parts.clone());
        parts
    })
}

/// True when `pattern` (words, a trailing `*` on a word means "any ending") occurs in
/// `tokens` as a contiguous run. Patterns are written by operators in config, so they are
/// normalised with [`words`] the same way as the message.
pub fn matches_pattern(tokens: &[String], pattern: &str) -> bool {
    let parts = pattern_parts(pattern);
    if parts.is_empty() || parts.len() > tokens.len() {
        return false;
    }
    tokens.windows(parts.len()).any(|window| {
        window
            .iter()
            .zip(parts.iter())
            .all(|(token, (word, prefix))| {
                if *prefix {
                    token.starts_with(word.as_str())
                } else {
                    token == word
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lowercase_and_join_contractions() {
        assert_eq!(words("I CAN'T log-in!"), ["i", "cant", "log", "in"]);
        assert_eq!(words("Ça coûte combien?"), ["ça", "coûte", "combien"]);
        assert!(words("🙂🙂 !!!").is_empty());
    }

    #[test]
    fn stems_meet_across_inflections() {
        assert_eq!(stem("resetting"), stem("reset"));
        assert_eq!(stem("invoices"), stem("invoice"));
        assert_eq!(terms("cancelled"), terms("cancel"));
        assert_eq!(stem("canceled"), stem("cancel"));
        assert_eq!(stem("updated"), stem("update"));
        assert_eq!(stem("charges"), stem("charge"));
        assert_eq!(stem("status"), "status");
    }

    #[test]
    fn phrases_conflate_before_stemming() {
        assert_eq!(content_terms("How do I sign in?"), ["how", "login"]);
        assert_eq!(terms("log in with two factor"), ["login", "with", "2fa"]);
    }

    #[test]
    fn patterns_match_whole_words_and_prefixes() {
        let tokens = words("I want to file a complaint about your service");
        assert!(matches_pattern(&tokens, "complain*"));
        assert!(matches_pattern(&tokens, "file a complaint"));
        assert!(!matches_pattern(&tokens, "plain"));
        assert!(!matches_pattern(&tokens, ""));
    }
}
