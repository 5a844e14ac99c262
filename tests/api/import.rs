//! `bellbook import`: NDJSON contacts through the real binary, beside a
//! running server on the same database. Each line is validated as the body
//! of a `POST /contacts`; rejected lines are reported with their numbers and
//! the API's reasons (exit status 3), contacts that exist already are
//! skipped, so an interrupted import run again adds only what is missing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::{BIN, ENVIRONMENT, account_rows, admin};
use crate::fixtures::{CONTACT_KEYS, keys, pairs};
use crate::helpers::{Backend, Caller, TestApp, send, uuids};
use crate::on_both_backends;

/// What one `bellbook import` run did.
struct Run {
    code: Option<i32>,
    stderr: String,
}

impl Run {
    /// The `line N: reason` reports on stderr, by line number.
    fn reported(&self) -> BTreeMap<u64, String> {
        reported_lines(&self.stderr)
    }

    #[track_caller]
    fn assert_summary(&self, imported: u64, account: &str, duplicates: u64, rejected: u64) {
        let summary = format!(
            "Imported {imported} contact(s) into '{account}'; skipped {duplicates} duplicate(s); \
             rejected {rejected} line(s)."
        );
        assert!(
            self.stderr.lines().any(|l| l == summary),
            "expected {summary:?} on stderr:\n{}",
            self.stderr
        );
    }
}

/// The `line N: reason` reports of an import's stderr, by line number.
pub fn reported_lines(stderr: &str) -> BTreeMap<u64, String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("line "))
        .filter_map(|l| l.split_once(": "))
        .map(|(n, reason)| (n.parse().expect("a line number"), reason.to_owned()))
        .collect()
}

/// Runs `bellbook import ARGS --database-url URL`, feeding `stdin` to it
/// when given (else its standard input is empty).
fn import(args: &[&str], database_url: &str, stdin: Option<&str>) -> Run {
    let mut command = Command::new(BIN);
    command
        .arg("import")
        .args(args)
        .args(["--database-url", database_url])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in ENVIRONMENT {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("bellbook runs");
    // Written by a thread of its own, so that a child busy writing its
    // output never waits for us while we wait for it.
    let feeder = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let text = text.to_owned();
        std::thread::spawn(move || pipe.write_all(text.as_bytes()))
    });
    let output = child.wait_with_output().expect("bellbook finishes");
    if let Some(feeder) = feeder {
        feeder
            .join()
            .expect("the feeding thread")
            .expect("bellbook read all of its standard input");
    }
    Run {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write_file(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("input file written");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// The lines of the `--errors` file, each a JSON object.
fn error_entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the errors file exists")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line of the errors file is JSON"))
        .collect()
}

fn names(contacts: &[Value]) -> Vec<&str> {
    contacts
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect()
}

/// A server without a rate limit, and a second account "Acme" beside its
/// first one, configured for the lines below: tags, two custom fields and
/// a Telegram channel. Returns the app and Acme's key.
async fn acme(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let key = app.create_account("Acme").await;
    let acme = app.as_key(&key);
    for body in [json!({"name": "lead"}), json!({"name": "VIP"})] {
        acme.post("/tags", body).await.assert_status(200);
    }
    for body in [
        json!({"name": "Plan", "type": "dropdown", "options": ["Free", "Pro"]}),
        json!({"name": "Score", "type": "number"}),
    ] {
        acme.post("/custom_fields", body).await.assert_status(200);
    }
    acme.post(
        "/channels",
        json!({"title": "Telegram", "type": "telegram", "main": true}),
    )
    .await
    .assert_status(200);
    (app, key)
}

/// The file of the tests: valid lines, lines that do not validate and
/// duplicates, numbered from 1. The contact "Already here" must exist
/// before it is imported (`+39 333 000 0001` is its number).
fn mixed_lines() -> Vec<String> {
    [
        // 1: valid, tags in another case, typed custom fields.
        json!({"identifier": "+39 333 100 0001", "source": "whatsapp", "name": "Ann",
               "tags": ["LEAD", "vip"], "custom_fields": {"plan": "pro", "Score": 7}})
        .to_string(),
        // 2: not JSON.
        r#"{"identifier": "+39 333 100 0002", "source": "whatsapp", "name": "Cut"#.to_owned(),
        // 3: valid, on Telegram, tags as one comma-separated string.
        json!({"identifier": "@bob", "source": "telegram", "name": "Bob", "tags": "VIP, lead"})
            .to_string(),
        // 4: blank.
        "   ".to_owned(),
        // 5: an unknown source.
        json!({"identifier": "555", "source": "fax", "name": "Fax"}).to_string(),
        // 6: no identifier.
        json!({"source": "whatsapp", "name": "No number"}).to_string(),
        // 7: line 1's number, spelt differently.
        json!({"identifier": "+39-333-1000001", "source": "whatsapp", "name": "Ann again"})
            .to_string(),
        // 8: the number of the contact made through the API.
        json!({"identifier": "393330000001", "source": "whatsapp", "name": "Already here too"})
            .to_string(),
        // 9: an unknown tag and a value that does not fit its field.
        json!({"identifier": "+1 555 0109", "source": "whatsapp", "name": "Carl",
               "tags": ["nope"], "custom_fields": {"Plan": "Gold"}})
        .to_string(),
        // 10: valid, with the French spellings.
        json!({"identifiant": "+1 555 0110", "source": "WhatsApp", "nom": "Dora"}).to_string(),
        // 11: JSON, but no object.
        "[1, 2, 3]".to_owned(),
        // 12: valid, and the last line has no newline after it.
        json!({"identifier": "+1 555 0112", "source": "whatsapp", "name": "Eve",
               "custom_fields": {"Plan": "Free"}})
        .to_string(),
    ]
    .to_vec()
}

const REJECTED: [u64; 5] = [2, 5, 6, 9, 11];

fn ndjson(lines: &[String]) -> String {
    lines.join("\n")
}

/// Asserts what `--errors` wrote: the rejected lines, in order, each with
/// the error `POST /contacts` answers for the same body, and the same
/// reasons on stderr.
async fn assert_rejections(run: &Run, errors: &Path, caller: &Caller, lines: &[String]) {
    let entries = error_entries(errors);
    let numbers: Vec<u64> = entries
        .iter()
        .map(|e| e["line"].as_u64().expect("a line number"))
        .collect();
    assert_eq!(numbers, REJECTED, "{entries:?}");
    let reported = run.reported();
    assert_eq!(
        reported.keys().copied().collect::<Vec<_>>(),
        REJECTED,
        "every rejected line is reported on stderr:\n{}",
        run.stderr
    );
    for entry in &entries {
        let line = entry["line"].as_u64().expect("a line number");
        // The line as the import read it: with its line end, if any.
        let index = usize::try_from(line).expect("small") - 1;
        let mut body = lines[index].clone();
        if index + 1 < lines.len() {
            body.push('\n');
        }
        let api = send(
            caller
                .request(Method::POST, "/contacts")
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert!(
            api.status == 400 || api.status == 422,
            "line {line} is refused by the API too: {}",
            api.text
        );
        assert_eq!(
            entry["error"], api.body["error"],
            "line {line} is rejected for the API's reasons"
        );
        assert_eq!(
            reported[&line],
            entry["error"]["message"].as_str().expect("a message"),
            "line {line}: stderr gives the same reason"
        );
    }
    let codes: Vec<&str> = entries
        .iter()
        .map(|e| e["error"]["code"].as_str().expect("a code"))
        .collect();
    assert_eq!(
        codes,
        [
            "invalid_json",
            "invalid_type",
            "required",
            "validation_failed",
            "body_not_object"
        ],
        "{entries:?}"
    );
    // (field, code) of each detail.
    let details = |entry: &Value| -> Vec<(String, String)> {
        entry["error"]["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| {
                        (
                            d["field"].as_str().unwrap_or_default().to_owned(),
                            d["code"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(details(&entries[1]), pairs(&[("source", "invalid_type")]));
    assert_eq!(details(&entries[2]), pairs(&[("identifier", "required")]));
    assert_eq!(
        details(&entries[3]),
        pairs(&[
            ("tags[0]", "unknown_tag"),
            ("custom_fields.Plan", "invalid_custom_field_value")
        ])
    );
}

/// Asserts that Acme holds exactly the API's contact and the four valid
/// lines, as they were given.
async fn assert_imported(caller: &Caller, already: &Value) {
    let contacts = caller.every_contact("/contacts").await;
    assert_eq!(
        names(&contacts),
        ["Eve", "Dora", "Bob", "Ann", "Already here"],
        "the valid lines, newest first, after the contact that was there"
    );
    assert_eq!(contacts[4], *already, "the existing contact is untouched");
    let by_name = |name: &str| {
        contacts
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"))
    };
    let teams = caller.get("/teams").await;
    teams.assert_status(200);
    let general = &teams.body["teams"][0];
    assert_eq!(general["default"], true, "{}", teams.text);
    for contact in &contacts {
        assert_eq!(keys(contact), CONTACT_KEYS, "{contact}");
        assert_eq!(
            contact["team"]["uuid"], general["uuid"],
            "the default team: {contact}"
        );
    }
    let ann = by_name("Ann");
    assert_eq!(ann["phoneNumber"], "+39 333 100 0001", "as spelt on line 1");
    assert_eq!(ann["source"], "whatsapp");
    assert_eq!(ann["tags"], json!(["lead", "VIP"]), "canonical spellings");
    assert_eq!(ann["customFields"], json!({"Plan": "Pro", "Score": "7"}));
    let bob = by_name("Bob");
    assert_eq!(bob["source"], "telegram");
    assert_eq!(bob["channel"]["type"], "telegram");
    assert_eq!(bob["tags"], json!(["VIP", "lead"]));
    assert_eq!(bob["customFields"], json!({}));
    let dora = by_name("Dora");
    assert_eq!(dora["phoneNumber"], "+1 555 0110");
    assert_eq!(dora["tags"], json!([]));
    assert_eq!(by_name("Eve")["customFields"], json!({"Plan": "Free"}));

    // Each is read, looked up and found like any other contact.
    for contact in &contacts {
        let uuid = contact["uuid"].as_str().expect("uuid");
        let one = caller.get(&format!("/contacts/{uuid}")).await;
        one.assert_status(200);
        assert_eq!(one.body["contact"], json!([contact]));
    }
    let found = caller.get("/contacts/phone/393331000001").await;
    found.assert_status(200);
    assert_eq!(found.body["contact"]["name"], "Ann", "the first line won");
    for (query, expected) in [
        ("?tags=lead", &["Bob", "Ann"][..]),
        ("?tags=VIP,LEAD", &["Bob", "Ann"]),
        ("?source=telegram", &["Bob"]),
        ("?source=whatsapp", &["Eve", "Dora", "Ann", "Already here"]),
        ("?q=dor", &["Dora"]),
        ("?q=ANN", &["Ann"]),
        ("?q=555%2001", &["Eve", "Dora"]),
        ("?q=333%20100", &["Ann"]),
    ] {
        let listed = caller.get(&format!("/contacts{query}")).await;
        listed.assert_status(200);
        let contacts = listed.body["contacts"].as_array().expect("contacts");
        assert_eq!(names(contacts), expected, "{query}");
        assert_eq!(listed.body["meta"]["pages"], 1, "{query}");
    }
}

/// The contact made through the API before an import whose file has it
/// too (see [`mixed_lines`]).
async fn already_here(acme: &Caller) -> Value {
    acme.create_contact(
        json!({"identifier": "+39 333 000 0001", "source": "whatsapp", "name": "Already here"}),
    )
    .await
}

async fn a_mixed_file_imports_the_valid_lines_and_reports_the_rest(backend: Backend) {
    let (app, key) = acme(backend).await;
    let acme = app.as_key(&key);
    let already = already_here(&acme).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let lines = mixed_lines();
    let file = write_file(&dir.path().join("contacts.ndjson"), &ndjson(&lines));
    let errors = dir.path().join("errors.ndjson");
    let errors_arg = errors.to_str().expect("a UTF-8 path");
    let run = import(
        &[&file, "--account", "Acme", "--errors", errors_arg],
        &app.database_url,
        None,
    );
    assert_eq!(run.code, Some(3), "lines were rejected:\n{}", run.stderr);
    run.assert_summary(4, "Acme", 2, 5);
    assert_rejections(&run, &errors, &acme, &lines).await;
    assert_imported(&acme, &already).await;
    // The first account got none of it.
    let first = app.get("/contacts").await;
    first.assert_status(200);
    assert_eq!(first.body["contacts"], json!([]));
}

async fn an_import_run_again_adds_only_what_is_missing(backend: Backend) {
    let (app, key) = acme(backend).await;
    let acme = app.as_key(&key);
    let already = already_here(&acme).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = mixed_lines();

    // Interrupted after line 3: only Ann and Bob made it.
    let part = write_file(&dir.path().join("part.ndjson"), &ndjson(&lines[..3]));
    let run = import(&[&part, "--account", "Acme"], &app.database_url, None);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    run.assert_summary(2, "Acme", 0, 1);
    let before = acme.every_contact("/contacts").await;
    assert_eq!(names(&before), ["Bob", "Ann", "Already here"]);

    // The whole file again: the rest, and nothing twice.
    let file = write_file(&dir.path().join("contacts.ndjson"), &ndjson(&lines));
    let errors = dir.path().join("errors.ndjson");
    let errors_arg = errors.to_str().expect("a UTF-8 path");
    let run = import(
        &[&file, "--account", "Acme", "--errors", errors_arg],
        &app.database_url,
        None,
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    run.assert_summary(2, "Acme", 4, 5);
    assert_rejections(&run, &errors, &acme, &lines).await;
    assert_imported(&acme, &already).await;
    let after = acme.every_contact("/contacts").await;
    assert_eq!(
        uuids(&after)[2..],
        uuids(&before)[..],
        "the contacts of the first run are the same contacts"
    );

    // And once more: nothing new at all.
    let run = import(
        &[&file, "--account", "Acme", "--errors", errors_arg],
        &app.database_url,
        None,
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    run.assert_summary(0, "Acme", 6, 5);
    assert_eq!(error_entries(&errors).len(), REJECTED.len());
    assert_eq!(acme.every_contact("/contacts").await, after);
}

/// A file of valid lines (Windows line ends included) exits 0, and so does
/// standard input; the account can be named by its uuid, and may be left
/// out when there is only one.
async fn clean_input_from_a_file_or_stdin_exits_0(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    app.post("/tags", json!({"name": "Imported"}))
        .await
        .assert_status(200);
    let listing = admin(&["accounts", "list"], &app.database_url);
    let rows = account_rows(&listing);
    assert_eq!(rows.len(), 1, "{listing}");
    let account_uuid = rows[0].split_whitespace().next().expect("a uuid");
    let account_name = rows[0]
        .splitn(3, "  ")
        .nth(2)
        .expect("a name")
        .trim()
        .to_owned();

    let dir = tempfile::tempdir().expect("temp dir");
    let file_lines: Vec<String> = (0..30)
        .map(|i| {
            json!({"identifier": format!("+44 20 7946 {i:04}"), "source": "whatsapp",
                   "name": format!("File {i:02}"), "tags": ["imported"]})
            .to_string()
        })
        .collect();
    let file = write_file(
        &dir.path().join("clean.ndjson"),
        &format!("{}\r\n", file_lines.join("\r\n")),
    );
    let errors = dir.path().join("errors.ndjson");
    let errors_arg = errors.to_str().expect("a UTF-8 path");
    let run = import(&[&file, "--errors", errors_arg], &app.database_url, None);
    assert_eq!(run.code, Some(0), "nothing was rejected:\n{}", run.stderr);
    run.assert_summary(30, &account_name, 0, 0);
    assert!(run.reported().is_empty(), "{}", run.stderr);
    assert_eq!(error_entries(&errors), Vec::<Value>::new());

    let stdin_lines: String = (0..5)
        .map(|i| {
            format!(
                "{}\n",
                json!({"identifier": format!("+44 20 7946 9{i:03}"), "source": "whatsapp",
                       "name": format!("Stdin {i}")})
            )
        })
        .collect();
    let run = import(
        &["-", "--account", account_uuid],
        &app.database_url,
        Some(&stdin_lines),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    run.assert_summary(5, &account_name, 0, 0);
    // Standard input again, now with one bad line among them: the others
    // are all there already.
    let run = import(
        &["-", "--account", account_uuid],
        &app.database_url,
        Some(&format!("{stdin_lines}{{\"name\": \"x\"}}\n")),
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    run.assert_summary(0, &account_name, 5, 1);
    assert_eq!(
        run.reported().keys().copied().collect::<Vec<_>>(),
        [6],
        "{}",
        run.stderr
    );

    let mut contacts = Vec::new();
    let mut page = app.get("/contacts").await;
    loop {
        page.assert_status(200);
        assert_eq!(page.body["meta"]["pages"], 2);
        contacts.extend(page.body["contacts"].as_array().expect("contacts").clone());
        let Some(next) = page.body["meta"]["next"].as_str() else {
            break;
        };
        page = app.get(&format!("/contacts?after={next}")).await;
    }
    let mut expected: Vec<String> = (0..30).map(|i| format!("File {i:02}")).collect();
    expected.extend((0..5).map(|i| format!("Stdin {i}")));
    expected.reverse();
    assert_eq!(names(&contacts), expected);
    let tagged = app.get("/contacts?tags=Imported").await;
    tagged.assert_status(200);
    assert_eq!(tagged.body["meta"]["pages"], 2);
    let tagged = app.get("/contacts?tags=Imported&page=2").await;
    assert_eq!(
        names(tagged.body["contacts"].as_array().expect("contacts")),
        [
            "File 09", "File 08", "File 07", "File 06", "File 05", "File 04", "File 03", "File 02",
            "File 01", "File 00"
        ]
    );
}

/// Without `--account` on a database of several accounts, or with an
/// account that is not there, nothing is imported.
async fn import_needs_to_know_the_account(backend: Backend) {
    let (app, key) = acme(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_file(
        &dir.path().join("one.ndjson"),
        &format!(
            "{}\n",
            json!({"identifier": "+1 555 0100", "source": "whatsapp", "name": "Lone"})
        ),
    );
    let run = import(&[&file], &app.database_url, None);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the database has 2 accounts; say which with --account"),
        "{}",
        run.stderr
    );
    let run = import(&[&file, "--account", "Nobody"], &app.database_url, None);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("no account 'Nobody'"), "{}", run.stderr);
    let missing = dir.path().join("missing.ndjson");
    let run = import(
        &[missing.to_str().expect("a UTF-8 path"), "--account", "Acme"],
        &app.database_url,
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
    for caller in [app.as_key(&key), app.as_key(&app.key)] {
        let listed = caller.get("/contacts").await;
        listed.assert_status(200);
        assert_eq!(listed.body["contacts"], json!([]));
    }
}

on_both_backends!(
    a_mixed_file_imports_the_valid_lines_and_reports_the_rest,
    an_import_run_again_adds_only_what_is_missing,
    clean_input_from_a_file_or_stdin_exits_0,
    import_needs_to_know_the_account,
);
