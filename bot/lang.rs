//! Which language a visitor writes in.
//!
//! Short chat messages are hard to classify ("ok", "Klarna?", "12345"), so a message's
//! language is only taken from the text when the evidence is strong: a reliable
//! `whatlang` detection, Chinese characters, or letters only one supported language uses.
//! Otherwise the conversation keeps the language it had, which started from the widget's
//! locale. Languages are normalised to the codes content uses: `en`, `ru`, `pl`,
//! `zh-Hans`, `zh-Hant` (and the primary subtag of anything else).

use whatlang::{Detector, Lang, Script};

/// The language of last resort: the knowledge base's source language.
pub const DEFAULT_LANG: &str = "en";

/// Normalises a locale or language tag (`pl-PL`, `zh_TW`, `zh-Hant-HK`, `EN`) to a
/// conversation language, or `None` when it is not a language tag.
#[must_use]
pub fn canonical(tag: &str) -> Option<String> {
    let lower = tag.trim().replace('_', "-").to_ascii_lowercase();
    let mut parts = lower.split('-');
    let primary = parts.next()?;
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    if primary != "zh" {
        return Some(primary.to_owned());
    }
    let rest: Vec<&str> = parts.collect();
    let traditional = rest.iter().any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo"));
    // A script subtag beats a region (zh-Hans-HK is Simplified).
    Some(if traditional && !rest.contains(&"hans") { "zh-Hant" } else { "zh-Hans" }.to_owned())
}

/// What the text of one message says about its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Strong enough to switch the conversation to this language.
    Language(String),
    /// Chinese, but the characters used exist in both scripts.
    ChineseEitherScript,
    /// Latin-script text without a confident language: the detector's best guess, if any.
    LatinGuess(Option<String>),
    /// Nothing to go on (digits, punctuation).
    Unsure,
}

/// Languages the detector chooses between.
const CANDIDATES: [Lang; 13] = [
    Lang::Eng,
    Lang::Rus,
    Lang::Pol,
    Lang::Ukr,
    Lang::Deu,
    Lang::Fra,
    Lang::Spa,
    Lang::Ita,
    Lang::Por,
    Lang::Nld,
    Lang::Ces,
    Lang::Swe,
    Lang::Tur,
];

/// Minimum whatlang confidence for a Latin or Cyrillic message to count.
const MIN_CONFIDENCE: f64 = 0.5;
/// Messages shorter than this (in letters) only count with unambiguous letters.
const MIN_LETTERS: usize = 12;

/// Looks at one message.
#[must_use]
pub fn evidence(text: &str) -> Evidence {
    // E-mail addresses, links, order numbers and postcodes are in no language.
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| {
            let code_like = w.chars().any(|c| c.is_ascii_digit()) && !w.chars().any(is_han);
            !w.contains('@') && !w.contains("://") && !w.starts_with("www.") && !code_like
        })
        .collect();
    let cleaned = words.join(" ");
    let text = cleaned.as_str();
    let han = text.chars().filter(|c| is_han(*c)).count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    // Chinese with a few Latin words mixed in ("怎么关掉cookie") is still Chinese.
    if han >= 2 && han * 3 >= letters || han > 0 && han * 2 >= letters {
        return match zhconv::is_hans_confidence(text) {
            c if c.is_nan() || (0.4..=0.6).contains(&c) => Evidence::ChineseEitherScript,
            c if c > 0.6 => Evidence::Language("zh-Hans".into()),
            _ => Evidence::Language("zh-Hant".into()),
        };
    }
    if text.chars().any(|c| {
        matches!(c, 'ą' | 'ć' | 'ę' | 'ł' | 'ń' | 'ś' | 'ź' | 'ż' | 'Ą' | 'Ć' | 'Ę' | 'Ł' | 'Ń' | 'Ś' | 'Ź' | 'Ż')
    }) {
        return Evidence::Language("pl".into());
    }
    let cyrillic = text.chars().filter(|c| matches!(c, '\u{0400}'..='\u{04FF}')).count();
    // Limiting the candidates to languages shops commonly serve makes short messages far
    // more decisive than choosing among all 69 whatlang knows.
    let info = Detector::with_allowlist(CANDIDATES.to_vec()).detect(text);
    let cyrillic_script = info.as_ref().is_some_and(|i| i.script() == Script::Cyrillic);
    if (cyrillic_script && letters >= 3) || (cyrillic >= 4 && cyrillic * 3 >= letters) {
        // Russian unless the detector is sure of another Cyrillic language.
        let other = info.as_ref().filter(|i| i.is_reliable() && i.script() == Script::Cyrillic).map(|i| i.lang());
        return Evidence::Language(other.and_then(iso639_1).unwrap_or("ru").into());
    }
    // A sentence, not a word: "ok" or "Klarna" in a Russian chat stays Russian.
    let latin = letters >= MIN_LETTERS && text.chars().filter(char::is_ascii_alphabetic).count() * 2 >= letters;
    let Some(info) = info else {
        return if latin { Evidence::LatinGuess(None) } else { Evidence::Unsure };
    };
    let guess = iso639_1(info.lang()).map(str::to_owned);
    if letters < MIN_LETTERS || !(info.is_reliable() || info.confidence() >= MIN_CONFIDENCE) {
        return if latin { Evidence::LatinGuess(guess) } else { Evidence::Unsure };
    }
    guess.map_or(Evidence::Unsure, Evidence::Language)
}

/// True for languages not written in Latin script.
fn non_latin(lang: &str) -> bool {
    matches!(primary_subtag(lang), "ru" | "uk" | "be" | "bg" | "zh" | "ja" | "ko")
}

/// The conversation's language after a message: strong evidence wins, otherwise the
/// language it already had.
#[must_use]
pub fn resolve(text: &str, current: &str) -> String {
    match evidence(text) {
        Evidence::Language(lang) => lang,
        Evidence::ChineseEitherScript if current.starts_with("zh") => current.to_owned(),
        Evidence::ChineseEitherScript => "zh-Hans".to_owned(),
        // Latin letters cannot be Russian or Chinese: take the best guess over the
        // conversation's language ("ile kosztuje dostawa" after a Russian question).
        Evidence::LatinGuess(guess) if non_latin(current) => guess.unwrap_or_else(|| DEFAULT_LANG.to_owned()),
        Evidence::LatinGuess(_) | Evidence::Unsure => current.to_owned(),
    }
}

fn iso639_1(lang: Lang) -> Option<&'static str> {
    Some(match lang {
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Pol => "pl",
        Lang::Ukr => "uk",
        Lang::Bel => "be",
        Lang::Deu => "de",
        Lang::Fra => "fr",
        Lang::Spa => "es",
        Lang::Ita => "it",
        Lang::Por => "pt",
        Lang::Nld => "nl",
        Lang::Ces => "cs",
        Lang::Slk => "sk",
        Lang::Swe => "sv",
        Lang::Dan => "da",
        Lang::Nob => "nb",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Jpn => "ja",
        Lang::Kor => "ko",
        _ => return None,
    })
}

/// True when `c` is a CJK ideograph.
#[must_use]
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// `zh-Hant` → `zh`, `en_GB` → `en`.
#[must_use]
pub fn primary_subtag(lang: &str) -> &str {
    lang.split(['-', '_']).next().unwrap_or(lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_become_conversation_languages() {
        assert_eq!(canonical("en-GB").as_deref(), Some("en"));
        assert_eq!(canonical("pl_PL").as_deref(), Some("pl"));
        assert_eq!(canonical("zh-TW").as_deref(), Some("zh-Hant"));
        assert_eq!(canonical("zh-HK").as_deref(), Some("zh-Hant"));
        assert_eq!(canonical("zh-Hant-HK").as_deref(), Some("zh-Hant"));
        assert_eq!(canonical("zh-CN").as_deref(), Some("zh-Hans"));
        assert_eq!(canonical("zh").as_deref(), Some("zh-Hans"));
        assert_eq!(canonical("RU").as_deref(), Some("ru"));
        assert_eq!(canonical("not a tag"), None);
        assert_eq!(canonical(""), None);
    }

    #[test]
    fn clear_messages_are_detected() {
        assert_eq!(resolve("Where is my parcel? It should have arrived yesterday.", "pl"), "en");
        assert_eq!(resolve("Где моя посылка? Она должна была прийти вчера.", "en"), "ru");
        assert_eq!(resolve("Kiedy dostanę zwrot pieniędzy?", "en"), "pl");
        assert_eq!(resolve("gdzie jest moja paczka, czekam juz tydzien", "en"), "pl");
        assert_eq!(resolve("我的包裹還沒到", "en"), "zh-Hant");
        assert_eq!(resolve("怎么关掉cookie", "en"), "zh-Hans");
        assert_eq!(resolve("какая гарантия на ножи Fernhill Kitchen?", "en"), "ru");
        assert_eq!(resolve("我的包裹还没到", "en"), "zh-Hant".replace("Hant", "Hans"));
    }

    #[test]
    fn short_or_ambiguous_messages_keep_the_conversation_language() {
        assert_eq!(resolve("ok", "pl"), "pl");
        assert_eq!(resolve("Klarna?", "pl"), "pl");
        assert_eq!(resolve("ok, Klarna", "ru"), "ru");
        assert_eq!(resolve("samantha.longname@example.com", "ru"), "ru", "an e-mail address is in no language");
        assert_eq!(resolve("NN1 2AB", "pl"), "pl");
        assert_eq!(resolve("ile kosztuje dostawa do Polski?", "ru"), "pl", "Latin text is not Russian");
        assert_eq!(resolve("12345678", "zh-Hant"), "zh-Hant");
        assert_eq!(resolve("你好", "zh-Hant"), "zh-Hant", "characters shared by both scripts keep the script");
        assert_eq!(resolve("你好", "en"), "zh-Hans");
    }
}
