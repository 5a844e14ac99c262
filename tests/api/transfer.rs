//! Moving contacts in and out (docs/import-export.md): `bellbook export`
//! as CSV and NDJSON and `GET /contacts/export`, read back by `bellbook
//! import` into an empty account with every value the same; CSV import of
//! a real-world-shaped file (BOM, `;`, quoted newlines, mixed-case
//! headers, numbers spelt differently) and of hostile ones; `--upsert` and
//! `--create-missing`.

use serde_json::{Value, json};

use crate::binary::admin_output;
use crate::helpers::{Backend, Caller, TestApp};
use crate::on_both_backends;

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        self
    }

    fn reported(&self) -> Vec<(u64, String)> {
        crate::import::reported_lines(&self.stderr)
            .into_iter()
            .collect()
    }
}

fn bellbook(args: &[&str], database_url: &str) -> Run {
    let output = admin_output(args, database_url);
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A server without a rate limit with an account "Source" beside its
/// first, set up with every kind of custom field, tags and a user; and
/// another server on a database of its own with an account "Target", as
/// `accounts create` leaves one (its own main channel and default team)
/// but for a user of the same e-mail.
async fn two_accounts(backend: Backend) -> (TestApp, Caller, TestApp, Caller) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let source = app.as_key(&app.create_account("Source").await);
    let other = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let target = other.as_key(&other.create_account("Target").await);
    for caller in [&source, &target] {
        caller
            .post("/users", json!({"email": "ops@example.com", "name": "Ops"}))
            .await
            .assert_status(200);
    }
    for name in ["lead", "VIP", "call back"] {
        source
            .post("/tags", json!({ "name": name }))
            .await
            .assert_status(200);
    }
    for field in [
        json!({"name": "Plan", "type": "dropdown", "options": ["Free", "Pro"]}),
        json!({"name": "Score", "type": "number"}),
        json!({"name": "Features", "type": "checkbox", "options": ["Dark Mode", "Analytics"]}),
        json!({"name": "Birthday", "type": "date"}),
        json!({"name": "Work Email", "type": "email"}),
        json!({"name": "Notes, long", "type": "text"}),
    ] {
        source
            .post("/custom_fields", field)
            .await
            .assert_status(200);
    }
    (app, source, other, target)
}

/// Contacts that use everything an export carries, the awkward values too.
fn source_contacts() -> Vec<Value> {
    vec![
        json!({"identifier": "+39 333 100 0001", "source": "whatsapp", "name": "Ann",
               "tags": ["lead", "VIP"], "assigned_user": "ops@example.com",
               "note": "first line\nsecond line, with \"quotes\"",
               "custom_fields": {"Plan": "Pro", "Score": -7.25, "Features": ["Dark Mode", "Analytics"],
                                 "Birthday": "1990-02-28", "Work Email": "ann@example.com",
                                 "Notes, long": "a; b, c\r\nd"}}),
        json!({"identifier": "5550102", "source": "whatsapp", "name": "=HYPERLINK(\"http://evil.example\",\"x\")",
               "tags": "call back", "custom_fields": {"Notes, long": "@SUM(A1:A2)", "Plan": "Free"}}),
        json!({"identifier": "+1 (555) 010-3", "source": "whatsapp", "name": "  Ünïcødé 名前 ",
               "custom_fields": {"Features": []}}),
        json!({"identifier": "+44 20 7946 0104", "source": "whatsapp", "name": "'quoted",
               "note": "-minus first"}),
    ]
}

/// Every contact of the account, oldest first, as `GET /contacts/{uuid}`
/// shows it, less what names the account (its links, channel and team).
async fn every_contact(caller: &Caller) -> Vec<Value> {
    let listed = caller.every_contact("/contacts").await;
    let mut contacts = Vec::new();
    for contact in listed.iter().rev() {
        let uuid = contact["uuid"].as_str().expect("uuid");
        let reply = caller.get(&format!("/contacts/{uuid}")).await;
        reply.assert_status(200);
        let mut contact = reply.body["contact"][0].clone();
        let object = contact.as_object_mut().expect("an object");
        for key in ["href", "conversationHref", "channel", "team"] {
            object.remove(key);
        }
        contacts.push(contact);
    }
    contacts
}

async fn an_export_imports_back_into_an_empty_account(backend: Backend) {
    for format in ["csv", "ndjson"] {
        let (app, source, other, target) = two_accounts(backend).await;
        for body in source_contacts() {
            source.create_contact(body).await;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(format!("contacts.{format}"));
        let file_arg = file.to_str().expect("a UTF-8 path");
        bellbook(
            &[
                "export",
                "--account",
                "Source",
                "--format",
                format,
                "-o",
                file_arg,
            ],
            &app.database_url,
        )
        .assert_code(0);
        let exported = std::fs::read(&file).expect("the export was written");

        let run = bellbook(
            &[
                "import",
                file_arg,
                "--account",
                "Target",
                "--create-missing",
            ],
            &other.database_url,
        );
        run.assert_code(0);
        assert!(
            run.stderr.contains("created tag 'call back'"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("created custom field 'Notes, long' (text)"),
            "{}",
            run.stderr
        );
        let expected = every_contact(&source).await;
        assert_eq!(expected.len(), 4);
        assert_eq!(
            every_contact(&target).await,
            expected,
            "{format}: the same contacts, uuids, times and values"
        );

        // And what the copy exports is what the original exported.
        let again = bellbook(
            &["export", "--account", "Target", "--format", format],
            &other.database_url,
        );
        again.assert_code(0);
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            String::from_utf8_lossy(&exported),
            "{format}: the export of the copy is byte for byte the same"
        );

        // Imported again: nothing doubles.
        let run = bellbook(
            &["import", file_arg, "--account", "Target"],
            &other.database_url,
        );
        run.assert_code(0);
        assert!(
            run.stderr
                .contains("Imported 0 contact(s) into 'Target'; skipped 4 duplicate(s)"),
            "{}",
            run.stderr
        );
    }
}

async fn an_export_into_a_database_that_has_its_uuids_gets_new_ones(backend: Backend) {
    let (app, source, _, _) = two_accounts(backend).await;
    for body in source_contacts() {
        source.create_contact(body).await;
    }
    let copy = app.as_key(&app.create_account("Copy").await);
    copy.post("/users", json!({"email": "ops@example.com", "name": "Ops"}))
        .await
        .assert_status(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("contacts.ndjson");
    let file_arg = file.to_str().expect("a UTF-8 path");
    bellbook(
        &["export", "--account", "Source", "-o", file_arg],
        &app.database_url,
    )
    .assert_code(0);
    bellbook(
        &["import", file_arg, "--account", "Copy", "--create-missing"],
        &app.database_url,
    )
    .assert_code(0);
    let originals = every_contact(&source).await;
    let copies = every_contact(&copy).await;
    assert_eq!(copies.len(), originals.len());
    for (original, copied) in originals.iter().zip(&copies) {
        assert_ne!(original["uuid"], copied["uuid"], "a uuid names one contact");
        assert_eq!(original["createdAt"], copied["createdAt"]);
        assert_eq!(original["customFields"], copied["customFields"]);
    }
}

async fn a_csv_export_is_safe_in_a_spreadsheet(backend: Backend) {
    let (app, source, _, _) = two_accounts(backend).await;
    for body in source_contacts() {
        source.create_contact(body).await;
    }
    let run = bellbook(
        &["export", "--account", "Source", "--format", "csv"],
        &app.database_url,
    );
    run.assert_code(0);
    let mut reader = csv::Reader::from_reader(&run.stdout[..]);
    let mut cells: Vec<String> = Vec::new();
    for record in reader.records() {
        cells.extend(record.expect("a CSV record").iter().map(str::to_owned));
    }
    assert!(
        cells
            .iter()
            .any(|c| c == "'=HYPERLINK(\"http://evil.example\",\"x\")")
    );
    assert!(cells.iter().any(|c| c == "'@SUM(A1:A2)"));
    assert!(cells.iter().any(|c| c == "'+39 333 100 0001"));
    assert!(cells.iter().any(|c| c == "''quoted"));
    assert!(cells.iter().any(|c| c == "'-minus first"));
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell a spreadsheet would run: {cell:?}"
        );
    }
}

async fn the_http_export_streams_the_filtered_contacts(backend: Backend) {
    let (app, source, _, _) = two_accounts(backend).await;
    for body in source_contacts() {
        source.create_contact(body).await;
    }
    // Another account of the same server.
    app.as_key(&app.create_account("Neighbour").await)
        .create_contact(json!({"identifier": "1", "source": "whatsapp", "name": "Other"}))
        .await;
    let reply = source
        .get("/contacts/export?tags=vip,LEAD&tags_mode=any")
        .await;
    reply.assert_status(200);
    assert_eq!(
        reply.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/x-ndjson"[..])
    );
    let lines: Vec<Value> = reply
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["name"], "Ann");
    assert_eq!(
        lines[0]["custom_fields"]["Features"],
        "[\"Dark Mode\", \"Analytics\"]"
    );
    assert_eq!(lines[0]["assigned_user"], "ops@example.com");

    // The whole account, as the command writes it, and nothing of another.
    let all = source.get("/contacts/export").await;
    all.assert_status(200);
    let cli = bellbook(&["export", "--account", "Source"], &app.database_url);
    cli.assert_code(0);
    assert_eq!(all.text, String::from_utf8_lossy(&cli.stdout));
    assert!(!all.text.contains("Other"));

    for bad in ["page=2", "after=abc", "source=fax", "tags_mode=some"] {
        let reply = source.get(&format!("/contacts/export?{bad}")).await;
        reply.assert_status(400);
        assert_eq!(reply.body["error"]["code"], "invalid_query", "{bad}");
    }
    let none = source.get("/contacts/export?tags=nope").await;
    none.assert_status(200);
    assert_eq!(none.text, "");
}

/// A spreadsheet's CSV as people send them: a BOM, `;` between cells,
/// headers in any case, a quoted cell across lines, one number twice in
/// two spellings, a formula escaped the way exports escape it.
const SPREADSHEET: &str = "\u{feff}NAME;Phone;tags;PLAN;score;features\r\n\
    \"Ann\r\nLovelace\";+39 333 100 0001;LEAD, vip;pro;7;Dark Mode, Analytics\r\n\
    Bob;'+1 555 0102;;;;\r\n\
    Ann again;39-333-1000001;;;;\r\n\
    '=HYPERLINK(\"http://evil.example\");555 0104;;Free;-1.5;\r\n";

async fn a_spreadsheet_imports_as_people_write_them(backend: Backend) {
    let (app, source, _, _) = two_accounts(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("people.csv");
    std::fs::write(&file, SPREADSHEET).expect("written");
    let file_arg = file.to_str().expect("a UTF-8 path");
    let run = bellbook(
        &["import", file_arg, "--account", "Source"],
        &app.database_url,
    );
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Imported 3 contact(s) into 'Source'; skipped 1 duplicate(s)"),
        "{}",
        run.stderr
    );
    let contacts = every_contact(&source).await;
    let names: Vec<&str> = contacts
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "Ann\r\nLovelace",
            "Bob",
            "=HYPERLINK(\"http://evil.example\")"
        ]
    );
    assert_eq!(contacts[0]["tags"], json!(["lead", "VIP"]));
    assert_eq!(contacts[0]["customFields"]["Plan"], "Pro");
    assert_eq!(contacts[0]["customFields"]["Score"], "7");
    assert_eq!(contacts[0]["phoneNumber"], "+39 333 100 0001");
    assert_eq!(contacts[1]["phoneNumber"], "+1 555 0102");
    assert_eq!(contacts[2]["customFields"]["Score"], "-1.5");
    assert_eq!(contacts[0]["source"], "whatsapp");

    // With --upsert the duplicate's fields land on the first contact.
    let run = bellbook(
        &["import", file_arg, "--account", "Source", "--upsert"],
        &app.database_url,
    );
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("Imported 0 contact(s) into 'Source'; updated 4 existing one(s)"),
        "{}",
        run.stderr
    );
    let after = every_contact(&source).await;
    assert_eq!(after.len(), 3);
    assert_eq!(after[0]["uuid"], contacts[0]["uuid"]);
    assert_eq!(after[0]["name"], "Ann again");
    assert_eq!(
        after[0]["tags"],
        json!(["lead", "VIP"]),
        "an empty cell leaves a value be"
    );
}

async fn hostile_csv_lines_fail_alone_with_their_reasons(backend: Backend) {
    let (app, source, _, _) = two_accounts(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hostile.csv");
    let mut bytes = b"name,identifier,note,Plan\n".to_vec();
    bytes.extend_from_slice(b"Ok,+1 555 0001,,\n"); // 2
    bytes.extend_from_slice(b"Bad \xff\xfe bytes,+1 555 0002,,\n"); // 3
    bytes.extend_from_slice(b"Too few,+1 555 0003\n"); // 4
    bytes.extend_from_slice(b"Too,many,cells,here,and more\n"); // 5
    bytes.extend_from_slice(b"Huge,+1 555 0006,\""); // 6
    bytes.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    bytes.extend_from_slice(b"\",\n");
    bytes.extend_from_slice(b"Long note,+1 555 0007,"); // 7
    bytes.extend(std::iter::repeat_n(b'n', 1001));
    bytes.extend_from_slice(b",\n");
    bytes.extend_from_slice(b"Wrong plan,+1 555 0008,,Gold\n"); // 8
    bytes.extend_from_slice(b"Also ok,+1 555 0009,,Free\n"); // 9
    std::fs::write(&file, &bytes).expect("written");
    let errors = dir.path().join("errors.ndjson");
    let run = bellbook(
        &[
            "import",
            file.to_str().expect("UTF-8"),
            "--account",
            "Source",
            "--errors",
            errors.to_str().expect("UTF-8"),
        ],
        &app.database_url,
    );
    run.assert_code(3);
    let reported = run.reported();
    let lines: Vec<u64> = reported.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8], "{}", run.stderr);
    assert!(reported[0].1.contains("not valid UTF-8"), "{reported:?}");
    assert!(
        reported[1]
            .1
            .contains("the row has 2 cell(s); the header names 4"),
        "{reported:?}"
    );
    assert!(
        reported[2].1.contains("the row has 5 cell(s)"),
        "{reported:?}"
    );
    assert!(
        reported[3].1.contains("larger than the limit"),
        "{reported:?}"
    );
    assert!(reported[4].1.contains("note"), "{reported:?}");
    assert!(reported[5].1.contains("Plan"), "{reported:?}");
    let entries: Vec<Value> = std::fs::read_to_string(&errors)
        .expect("the errors file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(entries.len(), 6);
    assert_eq!(
        entries[0]["error"]["details"][0]["code"],
        "invalid_encoding"
    );
    let names: Vec<String> = every_contact(&source)
        .await
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, ["Ok", "Also ok"]);
}

async fn an_unknown_column_stops_the_import_before_anything_is_written(backend: Backend) {
    let (app, source, _, _) = two_accounts(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("unknown.csv");
    std::fs::write(
        &file,
        "name,identifier,Favourite colour,tags\nAnn,1,red,fresh\n",
    )
    .expect("written");
    let file_arg = file.to_str().expect("UTF-8");
    let run = bellbook(
        &["import", file_arg, "--account", "Source"],
        &app.database_url,
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains("unknown column(s) 'Favourite colour'"),
        "{}",
        run.stderr
    );
    assert!(every_contact(&source).await.is_empty());
    let fields = source.get("/custom_fields").await;
    assert!(!fields.text.contains("Favourite colour"));

    let run = bellbook(
        &[
            "import",
            file_arg,
            "--account",
            "Source",
            "--create-missing",
        ],
        &app.database_url,
    );
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("created custom field 'Favourite colour' (text)")
    );
    assert!(run.stderr.contains("created tag 'fresh'"));
    let contacts = every_contact(&source).await;
    assert_eq!(contacts[0]["customFields"]["Favourite colour"], "red");
    assert_eq!(contacts[0]["tags"], json!(["fresh"]));
}

on_both_backends!(
    an_export_imports_back_into_an_empty_account,
    an_export_into_a_database_that_has_its_uuids_gets_new_ones,
    a_csv_export_is_safe_in_a_spreadsheet,
    the_http_export_streams_the_filtered_contacts,
    a_spreadsheet_imports_as_people_write_them,
    hostile_csv_lines_fail_alone_with_their_reasons,
    an_unknown_column_stops_the_import_before_anything_is_written,
);
