//! `medtap signatures check`: the shipped set validates; an operator file with problems exits 2
//! naming the file and line of each.

mod common;

#[test]
fn shipped_signatures_validate() {
    let out = common::medtap()
        .args(["signatures", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("signatures ok"));
}

#[test]
fn bad_operator_signatures_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("site.toml");
    std::fs::write(&f, "# our pumps\n[[rule]]\nid = 3\nnot toml at all\n").unwrap();
    let out = common::medtap()
        .args(["signatures", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", f.display())), "{err}");
}

/// `supersedes` must name another rule of the set that is less severe: an unknown id and a
/// rule as severe as the one superseding it are each reported with the file and line of the
/// rule that names them; a valid one passes.
#[test]
fn supersedes_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let f = dir.path().join("rules/site.toml");
    let rule = |id: u32, severity: u8, sup: &str| {
        format!(
            "[[rule]]\nid = {id}\nname = \"r{id}\"\ncategory = \"legacy-protocol\"\n\
             severity = {severity}\nprotocol = \"telnet\"\nsupersedes = [{sup}]\n\n"
        )
    };
    let check = |text: &str| {
        std::fs::write(&f, text).unwrap();
        common::medtap()
            .args(["signatures", "check"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    // Line 1: supersedes a missing rule; line 9: supersedes a rule of the same severity (6001001,
    // Telnet, severity 2).
    let out = check(&(rule(7_000_001, 1, "7999999") + &rule(7_000_002, 2, "6001001")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:1:", f.display())), "{err}");
    assert!(err.contains("7999999"), "{err}");
    assert!(err.contains(&format!("{}:9:", f.display())), "{err}");
    assert!(err.contains("not less severe"), "{err}");
    let out = check(&rule(7_000_003, 1, "6001001"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
