//! Language-detection accuracy on answer-test files: prints every question whose detected
//! language differs from its label, both as a follow-up in a conversation already in that
//! language and as the first message of a conversation that started in English.
//!
//! ```text
//! cargo run --release --example lang_eval -- knowledge-base/tests/*.toml
//! ```
fn main() {
    for file in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&file).expect("read");
        let value: toml::Value = toml::from_str(&text).expect("toml");
        let cases = value.get("case").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        let mut wrong = 0;
        for case in &cases {
            let ask = case.get("ask").and_then(|v| v.as_str()).unwrap_or_default();
            let lang = case.get("lang").and_then(|v| v.as_str()).unwrap_or_default();
            let got = supportbot::lang::resolve(ask, &supportbot::lang::canonical(lang).unwrap_or_default());
            let fresh = supportbot::lang::resolve(ask, "en");
            if got != lang || (fresh != lang && lang != "en") {
                wrong += 1;
                println!("{lang} -> {got} (from en: {fresh}): {ask}");
            }
        }
        println!("{file}: {wrong}/{} not as labelled", cases.len());
    }
}
