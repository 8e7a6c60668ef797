//! Structural, multilingual rules of the trimmer: quote headers ("On <date>, <name> wrote:"),
//! Outlook's localized From/Sent/To/Subject labels, "-----Original Message-----" separators and
//! "sent from my phone" lines, in the languages of the clients support mail comes from.
//!
//! The rules look at a line's shape (a date or an address, a verb of writing, a trailing colon;
//! a short line naming a device and a verb of sending) rather than at exact phrases, so a client
//! that words its header a little differently is still recognised. The tables below are the
//! vocabulary those shapes need; `tests/fixtures/trim_multilingual/` documents where each
//! format comes from.

use std::sync::OnceLock;

use fancy_regex::Regex;

use super::{hit, rule};

/// "wrote/said" in the supported languages. Latin and Cyrillic verbs are matched as words.
const WROTE_WORDS: &[&str] = &[
    // English
    "wrote",
    "writes",
    "said",
    "says",
    // German
    "schrieb",
    "schrieben",
    "geschrieben",
    // French
    "a écrit",
    "a ecrit",
    "écrivait",
    "a dit",
    // Spanish, Portuguese, Italian
    "escribió",
    "escribio",
    "escreveu",
    "ha scritto",
    "scrisse",
    // Dutch
    "schreef",
    "geschreven",
    // Polish, Czech, Slovak
    "napisał",
    "napisała",
    "napisal",
    "pisze",
    "napisana przez",
    "napsal",
    "napsala",
    "napísal",
    // Scandinavian, Finnish
    "skrev",
    "kirjoitti",
    // Russian, Ukrainian
    "написал",
    "написала",
    "пишет",
    "написав",
    "пише",
    // Turkish, Hungarian, Romanian, Greek, Croatian/Serbian
    "yazdı",
    "írta",
    "a scris",
    "έγραψε",
    "napisao",
];

/// Scripts without word spaces: matched as substrings (Chinese, Japanese, Korean).
const WROTE_CJK: &[&str] = &[
    "写道",
    "寫道",
    "書きました",
    "のメール",
    "のメッセージ",
    "님이 작성",
    "작성",
    "쓴 글",
];

/// Words a wrapped or verb-medial quote header starts with ("Am <date> schrieb <name>:").
const ON_WORDS: &[&str] = &[
    "on",
    "at",
    "am",
    "le",
    "el",
    "em",
    "il",
    "il giorno",
    "op",
    "w dniu",
    "dnia",
    "dne",
    "dňa",
    "den",
    "på",
    "в",
    "у",
    "在",
    "于",
];

/// Outlook's and webmail's header labels, From/Sent/Date/To/Cc/Subject, per language.
pub(super) const HEADER_LABELS: &[&str] = &[
    // English
    "From",
    "Sent",
    "Date",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Reply-To",
    // German
    "Von",
    "Gesendet",
    "Datum",
    "An",
    "Betreff",
    "Antwort an",
    // French
    "De",
    "Envoyé",
    "Date",
    "À",
    "A",
    "Objet",
    "Expéditeur",
    "Destinataire",
    "Répondre à",
    // Spanish, Portuguese
    "Enviado",
    "Enviado el",
    "Enviada em",
    "Enviado em",
    "Fecha",
    "Para",
    "Asunto",
    "Assunto",
    "Data",
    // Italian
    "Da",
    "Inviato",
    "Oggetto",
    "Risposta",
    // Dutch
    "Van",
    "Verzonden",
    "Aan",
    "Onderwerp",
    // Polish
    "Od",
    "Wysłano",
    "Wysłane",
    "Do",
    "DW",
    "Temat",
    // Czech, Slovak
    "Odesláno",
    "Komu",
    "Kopie",
    "Předmět",
    "Odoslané",
    "Predmet",
    // Swedish, Danish, Norwegian
    "Från",
    "Skickat",
    "Till",
    "Kopia",
    "Ämne",
    "Fra",
    "Sendt",
    "Til",
    "Kopi",
    "Emne",
    "Dato",
    // Finnish
    "Lähettäjä",
    "Lähetetty",
    "Vastaanottaja",
    "Kopio",
    "Aihe",
    "Päivämäärä",
    // Russian, Ukrainian
    "От",
    "Отправлено",
    "Отправитель",
    "Кому",
    "Копия",
    "Тема",
    "Дата",
    "Від",
    "Надіслано",
    "Копія",
    // Turkish
    "Kimden",
    "Gönderildi",
    "Gönderilme",
    "Tarih",
    "Kime",
    "Bilgi",
    "Konu",
    // Hungarian
    "Feladó",
    "Elküldve",
    "Címzett",
    "Tárgy",
    // Japanese
    "差出人",
    "送信日時",
    "送信者",
    "宛先",
    "件名",
    "日付",
    // Chinese (simplified, traditional)
    "发件人",
    "發件人",
    "发送时间",
    "發送時間",
    "收件人",
    "抄送",
    "主题",
    "主題",
    "日期",
    "时间",
    "寄件者",
    "寄件日期",
    "收件者",
    "副本",
    "主旨",
    // Korean
    "보낸 사람",
    "보낸 날짜",
    "받는 사람",
    "참조",
    "제목",
    "날짜",
];

/// Words of the dash-framed separators: "-----Original Message-----" and its translations.
const SEPARATOR_WORDS: &[&str] = &[
    "original",
    "forwarded",
    "message",
    "nachricht",
    "weitergeleitet",
    "d'origine",
    "transféré",
    "mensaje",
    "reenviado",
    "mensagem",
    "encaminhada",
    "messaggio",
    "inoltrato",
    "bericht",
    "doorgestuurd",
    "wiadomość",
    "przekazana",
    "zpráva",
    "původní",
    "přeposlaná",
    "e-mail",
    "meddelande",
    "vidarebefordrat",
    "besked",
    "melding",
    "videresendt",
    "viesti",
    "välitetty",
    "alkuperäinen",
    "сообщение",
    "пересылаемое",
    "исходное",
    "повідомлення",
    "переслане",
    "ileti",
    "iletilen",
    "özgün",
    "メッセージ",
    "元のメッセージ",
    "原始邮件",
    "原始郵件",
    "邮件",
    "郵件",
    "메시지",
    "원본",
    "oprindelig",
    "meddelelse",
    "opprinnelig",
    "ursprungligt",
    "oorspronkelijk",
    "oryginalna",
    "оригінальне",
    "mensaje reenviado",
    "originale",
];

/// Apple Mail's "Begin forwarded message:" in its localizations; the line is only that phrase.
const FORWARD_INTROS: &[&str] = &[
    "begin forwarded message",
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "début du message transféré",
    "inicio del mensaje reenviado",
    "início da mensagem reencaminhada",
    "início da mensagem encaminhada",
    "inizio messaggio inoltrato",
    "begin doorgestuurd bericht",
    "początek przekazywanej wiadomości",
    "začátek přeposílané zprávy",
    "vidarebefordrat brev",
    "videresendt besked",
    "videresendt melding",
    "välitetty viesti alkaa",
    "начало переадресованного сообщения",
    "початок пересланого повідомлення",
    "iletilen ileti başlangıcı",
    "転送されたメッセージ",
    "转发的邮件",
    "轉寄的郵件",
    "전달된 메시지",
];

/// Devices and mail apps a "sent from my phone" line names.
const DEVICE_WORDS: &[&str] = &[
    "iphon",
    "ipad",
    "android",
    "galaxy",
    "samsung",
    "outlook",
    "mail",
    "blackberry",
    "huawei",
    "xiaomi",
    "smartphone",
    "mobile",
    "handy",
    "mobil",
    "móvil",
    "celular",
    "cellulare",
    "telefon",
    "телефон",
    "смартфон",
    "yahoo",
    "gmx",
    "web.de",
    "yandex",
    "яндекс",
    "почты",
    "пошти",
    "aol",
    "proton",
    "seznam",
    "naver",
    "네이버",
    "갤럭시",
    "手机",
    "手機",
];

/// Verbs of sending a "sent from my phone" line starts or ends with, in the same languages.
const SENT_WORDS: &[&str] = &[
    "sent",
    "gesendet",
    "envoyé",
    "envoye",
    "enviado",
    "inviato",
    "verzonden",
    "verstuurd",
    "wysłane",
    "wysłano",
    "odesláno",
    "skickat",
    "sendt",
    "lähetetty",
    "отправлено",
    "надіслано",
    "gönderildi",
];

/// The same for scripts without word spaces ("iPhoneから送信", "发自我的iPhone").
const SENT_CJK: &[&str] = &["送信", "发自", "發自", "发送", "傳送", "보냄"];

/// "Get Outlook for iOS" and its translations: these only count next to "Outlook".
const GET_WORDS: &[&str] = &[
    "get",
    "holen",
    "obtenir",
    "télécharger",
    "obtener",
    "obter",
    "descargar",
    "baixe",
    "scarica",
    "ottieni",
    "downloaden",
    "pobierz",
    "stáhněte",
    "hämta",
    "hent",
    "få",
    "hanki",
    "получить",
    "отримати",
    "edinin",
    "入手",
    "获取",
    "取得",
    "받기",
];

struct LangRules {
    wrote: Regex,
    wrote_at_end: Regex,
    wrote_then_date: Regex,
    on_start: Regex,
    email: Regex,
    email_then_colon: Regex,
    separator: Regex,
    forward_intro: Regex,
    device: Regex,
    sent: Regex,
    get_outlook: Regex,
    date: Regex,
}

fn alternation(words: &[&str]) -> String {
    let mut words: Vec<&str> = words.to_vec();
    // Longest first so "napisała" wins over "napisał".
    words.sort_by_key(|word| std::cmp::Reverse(word.chars().count()));
    words
        .iter()
        .map(|word| fancy_regex::escape(word).into_owned())
        .collect::<Vec<_>>()
        .join("|")
}

fn lang_rules() -> &'static LangRules {
    static RULES: OnceLock<LangRules> = OnceLock::new();
    RULES.get_or_init(|| {
        let wrote = alternation(WROTE_WORDS);
        let cjk = alternation(WROTE_CJK);
        // "napisał(a)", "написал(а)": the gender suffix Gmail and Thunderbird add.
        let verb = format!(r"(?:(?<![\p{{L}}])(?:{wrote})(?:\([aа]\))?(?![\p{{L}}])|{cjk})");
        LangRules {
            wrote: rule(&format!("(?i){verb}")),
            wrote_at_end: rule(&format!(r"(?i){verb}[[:blank:]]*[:：]\s*$")),
            wrote_then_date: rule(&format!(r"(?i){verb}[^:：]*\d[^:：]*[:：]\s*$")),
            on_start: rule(&format!(r"(?i)^(?:{})(?![\p{{L}}])", alternation(ON_WORDS))),
            email: rule(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
            email_then_colon: rule(
                r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+[>)\]]*[[:blank:]]*[>)\]]?[[:blank:]]*[:：]\s*$",
            ),
            separator: rule(&format!(
                r"(?i)^[[:blank:]*]*-{{2,}}[[:blank:]]*[^-\n]{{0,40}}?(?:{})[^-\n]{{0,40}}?[[:blank:]]*-{{2,}}[[:blank:]*]*$",
                alternation(SEPARATOR_WORDS)
            )),
            forward_intro: rule(&format!(
                r"(?i)^(?:{})[[:blank:]]*[:：]$",
                alternation(FORWARD_INTROS)
            )),
            device: rule(&format!("(?i){}", alternation(DEVICE_WORDS))),
            sent: rule(&format!(
                r"(?i)^(?:{sent})(?![\p{{L}}])|(?<![\p{{L}}])(?:{sent})[[:blank:].!]*$|^(?:{cjk_sent})|(?:{cjk_sent})[[:blank:].!。]*$",
                sent = alternation(SENT_WORDS),
                cjk_sent = alternation(SENT_CJK),
            )),
            get_outlook: rule(&format!(
                r"(?i)(?=.*outlook)(?:(?<![\p{{L}}])(?:{})(?![\p{{L}}])|入手|获取|取得|받기)",
                alternation(GET_WORDS)
            )),
            // A time, a year, or a numeric date: "10:00", "2025", "6.1.25", "2025年".
            date: rule(
                r"\d{1,2}[:.]\d{2}(?!\d)|(?<!\d)(?:19|20)\d{2}(?!\d)|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}",
            ),
        }
    })
}

/// The line without its quote marks and surrounding blanks.
fn bare(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '>' || c == '*' || c.is_whitespace())
        .trim_end()
}

/// "On <date>, <name> wrote:", "Am <date> schrieb <name>:", "<name> <addr> 于<date>写道：",
/// "<date> <name> <addr>:" in any supported language: ends with a colon, carries a date or an
/// address, and either names a verb of writing where the languages put it or ends with the
/// sender's address. A line of the customer's own ending in ":" without these stays text.
pub(super) fn is_quote_header(line: &str) -> bool {
    let line = bare(line);
    let chars = line.chars().count();
    if !(8..=320).contains(&chars) || !(line.ends_with(':') || line.ends_with('：')) {
        return false;
    }
    let rules = lang_rules();
    let has_digit = hit(&rules.date, line);
    let has_email = hit(&rules.email, line);
    if !has_digit && !has_email {
        return false;
    }
    if hit(&rules.wrote_at_end, line) {
        return true;
    }
    if hit(&rules.wrote, line) && (has_email || name_follows_verb(line)) {
        return true;
    }
    // "<name> kirjoitti 6.1.2025 klo 10.00:", "<name> wrote on <date>:": a short line.
    if has_digit && line.split_whitespace().count() <= 12 && names_then_wrote(line) {
        return true;
    }
    // Gmail in Russian or Japanese: "<date> <name> <addr>:" with no verb at all.
    has_digit && hit(&rules.email_then_colon, line)
}

/// "Am <date> schrieb <name>:": starts like a quote header and only a name (a few words, no
/// date) follows the verb, so "On Monday I wrote to support at 10:00:" stays text.
fn name_follows_verb(line: &str) -> bool {
    let rules = lang_rules();
    if !hit(&rules.on_start, line) {
        return false;
    }
    let Ok(Some(verb)) = rules.wrote.find(line) else {
        return false;
    };
    let after = &line[verb.end()..];
    after.split_whitespace().count() <= 5 && !hit(&rules.date, after)
}

/// "<Name> kirjoitti <date>:": one to four words, capitalized, and not "I" or "We", before
/// the verb, so "I wrote on 6 Jan:" in the customer's own text is not a quote header.
fn names_then_wrote(line: &str) -> bool {
    let rules = lang_rules();
    let Ok(Some(found)) = rules.wrote_then_date.find(line) else {
        return false;
    };
    let before: Vec<&str> = line[..found.start()].split_whitespace().collect();
    let pronoun = |word: &str| {
        let word = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        matches!(
            word.as_str(),
            "i" | "we"
                | "you"
                | "he"
                | "she"
                | "they"
                | "ich"
                | "wir"
                | "je"
                | "nous"
                | "yo"
                | "eu"
                | "io"
                | "ik"
                | "wij"
                | "ja"
                | "my"
                | "jag"
                | "vi"
                | "jeg"
                | "minä"
                | "me"
                | "я"
                | "мы"
                | "ми"
                | "ben"
                | "biz"
        )
    };
    (1..=4).contains(&before.len())
        && before[0].starts_with(char::is_uppercase)
        && !before.iter().any(|word| pronoun(word))
}

/// "<name> wrote:" with neither date nor address: a header only when a quote follows it.
pub(super) fn is_bare_wrote_line(line: &str) -> bool {
    let line = bare(line);
    line.chars().count() <= 80 && hit(&lang_rules().wrote_at_end, line)
}

/// The first line of a quote header the client wrapped: it carries a date or an address,
/// does not end the sentence, and joined with the next line makes a quote header.
pub(super) fn starts_wrapped_header(line: &str, next: &str) -> bool {
    let first = bare(line);
    if first.is_empty() || first.chars().count() > 200 || is_quote_header(first) {
        return false;
    }
    if first.ends_with(['.', '!', '?', ':', '：']) && !first.ends_with("...") {
        return false;
    }
    let rules = lang_rules();
    let has_digit = first.chars().any(|c| c.is_ascii_digit());
    let looks_like_start = hit(&rules.on_start, first)
        || first.starts_with(|c: char| c.is_ascii_digit())
        || hit(&rules.email, first)
        || first.ends_with('<');
    has_digit && looks_like_start && is_quote_header(&format!("{first} {}", bare(next)))
}

/// "-----Original Message-----", "---------- Forwarded message ---------" and translations.
/// Also Apple Mail's "Begin forwarded message:" and its translations.
pub(super) fn is_separator(line: &str) -> bool {
    let rules = lang_rules();
    let line = bare(line);
    hit(&rules.separator, line) || hit(&rules.forward_intro, line)
}

/// "Sent from my iPhone", "Von meinem iPhone gesendet", "iPhoneから送信", "Get Outlook for
/// Android"...: a short line that names a device or mail app and a verb of sending.
pub(super) fn is_mobile_signature(line: &str) -> bool {
    // Not `bare`: a quoted "> Sent from my iPhone" belongs to the quote it is in.
    let line = line.trim();
    let words = line.split_whitespace().count();
    if line.is_empty() || line.chars().count() > 70 || words > 9 || line.ends_with('?') {
        return false;
    }
    let rules = lang_rules();
    (hit(&rules.device, line) && hit(&rules.sent, line)) || hit(&rules.get_outlook, line)
}

/// A localized "Label: value" header line ("Von: ...", "De : ...", "件名：...").
pub(super) fn header_rule() -> Regex {
    rule(&format!(
        r"(?i)^[[:blank:]*]*(?:{})[[:blank:]*]*[:：][[:blank:]*]*\S",
        alternation(HEADER_LABELS)
    ))
}
