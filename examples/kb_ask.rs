//! Shows how the knowledge base ranks questions: top hits with confidence and BM25.
//!
//! ```text
//! cargo run --example kb_ask -- "how long does delivery take" "can I pay with paypal"
//! ```

use std::path::Path;

use supportbot::kb::{KbContent, KnowledgeBase};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kb_dir = std::env::var("KB_DIR").map_or_else(|_| root.join("knowledge-base"), Into::into);
    let content = KbContent::load(&kb_dir).expect("knowledge base loads");
    for e in &content.errors {
        eprintln!("warning: {e}");
    }
    let kb = KnowledgeBase::in_ram(content).expect("index builds");
    let lang = std::env::var("LANG_CODE").unwrap_or_else(|_| "en".into());
    for question in std::env::args().skip(1) {
        println!("{question}");
        for hit in kb.search(&question, &lang, 5).expect("search") {
            println!("  {:.3}  bm25 {:6.2}  {:7} {}", hit.confidence, hit.bm25, hit.kind.as_str(), hit.id);
        }
    }
}
