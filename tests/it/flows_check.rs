//! `supportbot flows check` as a flow editor runs it: every kind of broken flow is caught
//! with file, line and a clear message; the shipped flows and transcripts pass.

use std::path::Path;
use std::process::Command;

use crate::harness::repo_path;

fn flows_check(dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_supportbot"))
        .args(["flows", "check", "--flows-dir"])
        .arg(dir)
        .output()
        .expect("run supportbot");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

const GOOD: &str = r#"
[[intent]]
id = "hello_flow"
flow = "f"
[intent.patterns]
en = ['^start$']

[[flow]]
id = "f"
start = "ask"

[[flow.step]]
id = "ask"
type = "ask"
slot = "name"
message = "welcome"
retry = "fallback"
next = "bye"
on_fail = "bye"

[[flow.step]]
id = "bye"
type = "end"
message = "smalltalk_goodbye"
"#;

/// A flows dir with the repo's catalogs, the shipped flows (the notice flows are required)
/// and one flow file.
fn flows_dir_with(flow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::create_dir_all(dir.path().join("messages")).expect("mkdir");
    std::fs::copy(repo_path("flows/messages/en.toml"), dir.path().join("messages/en.toml")).expect("copy");
    std::fs::copy(repo_path("flows/order-tracking.toml"), dir.path().join("order-tracking.toml")).expect("copy");
    std::fs::write(dir.path().join("test-flow.toml"), flow).expect("write");
    dir
}

#[test]
fn the_shipped_flows_and_their_transcripts_pass() {
    let (code, out) = flows_check(&repo_path("flows"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("transcripts passed"), "{out}");
}

#[test]
fn a_valid_flow_passes() {
    let dir = flows_dir_with(GOOD);
    let (code, out) = flows_check(dir.path());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn each_kind_of_broken_flow_is_reported_with_file_and_line() {
    let cases: [(&str, String, &str); 7] = [
        ("unknown step", GOOD.replace("next = \"bye\"", "next = \"byee\""), "goes to unknown step \"byee\""),
        (
            "unreachable step",
            format!("{GOOD}\n[[flow.step]]\nid = \"orphan\"\ntype = \"end\"\n"),
            "step \"orphan\" is unreachable",
        ),
        (
            "undefined slot",
            GOOD.replace(
                "type = \"end\"\nmessage = \"smalltalk_goodbye\"",
                "type = \"branch\"\non = \"colour\"\ncases = {}\ndefault = \"ask\"",
            ),
            "uses slot \"colour\", which nothing sets",
        ),
        ("bad intent regex", GOOD.replace("'^start$'", "'^(start$'"), "invalid regex"),
        ("bad ask pattern", GOOD.replace("slot = \"name\"", "slot = \"name\"\npattern = '[a-'"), "invalid pattern"),
        (
            "missing message",
            GOOD.replace("message = \"welcome\"", "message = \"no_such_phrase\""),
            "\"no_such_phrase\" is not in messages/en.toml",
        ),
        ("unknown step type", GOOD.replace("type = \"end\"", "type = \"teleport\""), "unknown variant `teleport`"),
    ];
    for (what, flow, expected) in cases {
        let dir = flows_dir_with(&flow);
        let (code, out) = flows_check(dir.path());
        assert_eq!(code, 1, "{what}: must fail: {out}");
        assert!(out.contains(expected), "{what}: expected {expected:?} in: {out}");
        assert!(out.contains("test-flow.toml:"), "{what}: located by file and line: {out}");
    }
}

#[test]
fn a_failing_transcript_fails_the_check() {
    let dir = flows_dir_with(GOOD);
    std::fs::create_dir_all(dir.path().join("tests")).expect("mkdir");
    std::fs::write(
        dir.path().join("tests/t.toml"),
        "[[transcript]]\nname = \"asks the name\"\n[[transcript.turn]]\nvisitor = \"start\"\nbot = [\"something else\"]\n",
    )
    .expect("write");
    let (code, out) = flows_check(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL") && out.contains("t.toml:1") && out.contains("asks the name"), "{out}");
    assert!(out.contains("expected to contain \"something else\""), "{out}");
}
