//! `obmen demo` as a newcomer runs it: the built binary, exit 0, readable output, nothing left.

use std::process::Command;

#[test]
fn demo_runs_both_sides_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_obmen"))
        .arg("demo")
        .current_dir(work.path())
        // Where its temporary files go, so that the test can see they are removed.
        .env("TMPDIR", tmp.path())
        // Neither the environment nor a config file may change what the demo does.
        .env("OBMEN_LISTEN", "256.0.0.1:1")
        .env("OBMEN_DATABASE_URL", "sqlite:///nonexistent/dir/x.db")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );

    let has = |needle: &str| {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    };
    // The store's orders went out.
    has("Step 1. The store places 3 orders");
    has("ООО \"Ромашка\" (company, ИНН 7701234567)");
    has("Анна Смирнова (person)");
    has("order discount 500.00");
    has("1 line discount");
    has("properties:");
    has("1C received 3 order(s): 3 new document(s) created, 0 updated, 0 duplicate(s); it sent 3 document(s) back.");
    has("1C received 1 order(s): 1 new document(s) created, 0 updated, 0 duplicate(s); it sent 4 document(s) back.");
    has("obmen told 1C: Unknown status \"Отгружен\" for order 1003");
    // 1C's side: four documents with 1C numbers.
    has("What 1C now holds");
    for n in ["EM-000001", "EM-000002", "EM-000003", "EM-000004"] {
        has(n);
    }
    // The store's side, line by line.
    has("What the store now sees");
    let line = |order: &str| -> String {
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("What the store now sees"))
            .find(|l| l.trim_start().starts_with(order))
            .unwrap_or_else(|| panic!("no store line for {order}:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        line("1001").starts_with("1001 D Готов к отгрузке yes no EM-000001 ПКО-0042"),
        "{}",
        line("1001")
    );
    assert!(
        line("1002").starts_with("1002 F Передан курьеру yes yes EM-000002 ПП-1187 РТУ-0815"),
        "{}",
        line("1002")
    );
    assert!(
        line("1003").starts_with("1003 P В работе yes no EM-000003 ПКО-0043"),
        "{}",
        line("1003")
    );
    assert!(
        line("1004").starts_with("1004 P В работе"),
        "{}",
        line("1004")
    );
    // The journal.
    has("What the journal says");
    has("session 1");
    has("session 2");
    has("message: Unknown status \"Отгружен\" for order 1003");
    has("Done: the gateway has stopped and its temporary files are removed.");

    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "files written to the working directory: {left:?}"
    );
}
