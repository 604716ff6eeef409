//! `supportbot kb check` as an editor runs it: exit code and messages.

use std::process::Command;

use crate::harness::repo_path;

fn kb_check(kb_dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_supportbot"))
        .args(["kb", "check", "--kb-dir"])
        .arg(kb_dir)
        .arg("--flows-dir")
        .arg(repo_path("flows"))
        .args(extra)
        .output()
        .expect("run supportbot");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn broken_files_fail_the_check_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp");
    let en = dir.path().join("articles/en");
    std::fs::create_dir_all(&en).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("faq")).expect("mkdir");
    std::fs::write(en.join("ok.md"), "---\ntitle: Fine\nsummary: Fine.\n---\nSee [missing](nowhere).\n")
        .expect("write");
    std::fs::write(dir.path().join("faq/bad.toml"), "[[entry]]\nid = \"x\"\nlang = \"en\"\nquestion = 5\n")
        .expect("write");
    let (code, out) = kb_check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.toml:4"), "TOML error located: {out}");
    assert!(out.contains("ok.md:5") && out.contains("nowhere"), "broken link located: {out}");
}

#[test]
fn the_sample_knowledge_base_passes_and_reports_accuracy() {
    let (code, out) = kb_check(&repo_path("knowledge-base"), &["--min-accuracy", "0.5"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("answer tests: accuracy"), "{out}");
    let (code, out) = kb_check(&repo_path("knowledge-base"), &["--min-accuracy", "0.99"]);
    assert_eq!(code, 1, "a floor above the measured accuracy fails: {out}");
}
