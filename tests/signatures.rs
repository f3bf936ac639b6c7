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
