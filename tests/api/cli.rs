//! The `herald` commands that read the configuration (`lineage`, `preview`, `keys rotate`) work
//! from the one in effect: the database's once Herald has stored one, the file's before, and
//! they say which.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// What a run of the `herald` binary printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `herald ARGS` with `env` added to the environment.
async fn herald(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(args).env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Writes `text` to a fresh file in the temp directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "herald-cli-{}-{name}",
        herald::tokens::random_token()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The upstreams a `lineage --json` run names, sorted.
fn upstreams_in(lineage: &str) -> Vec<String> {
    let rows: Vec<Value> = serde_json::from_str(lineage).unwrap();
    let mut ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r["upstream"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The database path of a test configuration.
fn database_of(config: &str) -> String {
    let line = config
        .lines()
        .find(|l| l.starts_with("database_url"))
        .unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

#[tokio::test]
async fn lineage_and_preview_use_the_stored_configuration_and_say_which_they_used() {
    let app = spawn_app().await;
    let file = temp_file("herald.toml", &app.config);
    let claims = temp_file(
        "id-token.json",
        r#"{"sub": "u1", "https://example.com/groups": ["ops"]}"#,
    );

    let run = herald(&["lineage", "--json", "--config", arg(&file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("using configuration version 1 from the database (by seed,"),
        "{}",
        run.stderr
    );
    assert_eq!(upstreams_in(&run.stdout), ["test"]);

    // An upstream added through the admin API exists only in the database.
    let res = app
        .api
        .post(format!("{}/admin/api/upstreams", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "id": "second", "kind": "oidc", "issuer": "https://second.example.com",
            "client_id": "herald",
            "attributes": [{"claim": "https://example\\.com/groups", "source": "id_token", "type": "string_array"}],
            "mappings": [{"from": "https://example\\.com/groups", "to": "groups"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let run = herald(&["lineage", "--json", "--config", arg(&file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("using configuration version 2 from the database (by bootstrap-token,"),
        "{}",
        run.stderr
    );
    assert_eq!(upstreams_in(&run.stdout), ["second", "test"]);
    let table = herald(&["lineage", "--config", arg(&file)], &[]).await;
    assert!(table.stdout.contains("second"), "{}", table.stdout);

    let run = herald(
        &[
            "preview",
            "--config",
            arg(&file),
            "--upstream",
            "second",
            "--id-token",
            arg(&claims),
            "--scopes",
            "openid groups",
        ],
        &[],
    )
    .await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("version 2 from the database"));
    let preview: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(preview["id_token"]["groups"], json!(["ops"]), "{preview}");

    // A file whose database does not exist yet is used as it is, and no database is created.
    let missing =
        std::env::temp_dir().join(format!("herald-cli-{}.db", herald::tokens::random_token()));
    let fresh = app.config.replace(
        &database_of(&app.config),
        &format!("sqlite://{}", missing.display()),
    );
    let fresh_file = temp_file("fresh.toml", &fresh);
    let run = herald(&["lineage", "--json", "--config", arg(&fresh_file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "using {} (its database does not exist yet)",
            fresh_file.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(upstreams_in(&run.stdout), ["test"]);
    assert!(!missing.exists());
    let run = herald(
        &[
            "preview",
            "--config",
            arg(&fresh_file),
            "--upstream",
            "second",
            "--id-token",
            arg(&claims),
        ],
        &[],
    )
    .await;
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("no upstream `second` in the configuration in effect"),
        "{}",
        run.stderr
    );

    // A database without a stored configuration: the file, and it says so.
    herald::store::connect(&format!("sqlite://{}", missing.display()))
        .await
        .unwrap();
    let run = herald(&["lineage", "--json", "--config", arg(&fresh_file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("(the database holds no configuration yet)"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn keys_rotate_keeps_the_old_key_for_the_stored_token_lifetimes_not_the_files() {
    let app = spawn_app().await;
    // The file now says tokens live 10 minutes; the database, seeded with the default of one
    // hour, is the truth, so the retired key must stay published for an hour (plus leeway).
    let edited = format!(
        "{}\n[tokens]\nid_token_ttl = \"10m\"\naccess_token_ttl = \"10m\"\n",
        app.config
    );
    let file = temp_file("herald.toml", &edited);
    let run = herald(
        &[
            "keys",
            "rotate",
            "--config",
            arg(&file),
            "--alg",
            "RS256",
            "--activate-in",
            "300",
        ],
        &[("HERALD_KEY_ENCRYPTION_KEY", &app.kek)],
    )
    .await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("using configuration version 1 from the database"),
        "{}",
        run.stderr
    );
    let number_after = |marker: &str| -> i64 {
        let at = run
            .stdout
            .find(marker)
            .unwrap_or_else(|| panic!("{}", run.stdout))
            + marker.len();
        run.stdout[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let signs_from = number_after("it signs from ");
    let leaves_at = number_after("leaves the JWKS at ");
    assert_eq!(leaves_at - signs_from, 3600 + 300, "{}", run.stdout);
}

/// A configuration for `herald serve` on the development upstream, `listen` and the database
/// given, plus `extra` top-level keys.
fn serve_config(listen: &str, database_url: &str, extra: &str) -> String {
    format!(
        "issuer = \"http://{listen}\"\nlisten = \"{listen}\"\ndatabase_url = \"{database_url}\"\n\
         {extra}\n[[upstreams]]\nid = \"dev\"\nkind = \"dev\"\n"
    )
}

#[tokio::test]
async fn a_failed_start_says_why_and_leaves_no_database_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let free = || format!("127.0.0.1:{}", free_port());
    let db = std::env::temp_dir().join(format!(
        "herald-failed-{}.db",
        herald::tokens::random_token()
    ));
    let sqlite = format!("sqlite://{}", db.display());
    let kek = herald::tokens::keys::KeyEncryption::generate_base64();
    let env = [("HERALD_KEY_ENCRYPTION_KEY", kek.as_str())];
    let cases = [
        (
            serve_config(&busy, &sqlite, ""),
            format!("cannot listen on {busy}"),
        ),
        (
            serve_config(&free(), &sqlite, "session_store = \"redis://127.0.0.1:1\""),
            "cannot reach the session store redis://127.0.0.1:1".to_string(),
        ),
        (
            serve_config(&free(), "postgres://herald:pw@127.0.0.1:1/none", ""),
            "cannot open database postgres://herald:redacted@127.0.0.1:1/none".to_string(),
        ),
    ];
    for (config, why) in cases {
        let file = temp_file("herald.toml", &config);
        let started = std::time::Instant::now();
        let run = herald(&["serve", "--config", arg(&file)], &env).await;
        assert!(!run.ok, "{config}");
        assert!(run.stderr.contains(&why), "{why} not in: {}", run.stderr);
        assert!(
            !run.stderr.contains(":pw@"),
            "the password in: {}",
            run.stderr
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{why}"
        );
        assert!(
            !db.exists(),
            "{why}: a database was left at {}",
            db.display()
        );
    }
    // The same file on a free port starts, and creates the database.
    let file = temp_file("herald.toml", &serve_config(&free(), &sqlite, ""));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config", arg(&file)])
        .env("HERALD_KEY_ENCRYPTION_KEY", &kek)
        .env("RUST_LOG", "off")
        .spawn()
        .unwrap();
    let mut created = false;
    for _ in 0..100 {
        if db.exists() {
            created = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(created, "a good start creates {}", db.display());
}

#[tokio::test]
async fn config_diff_and_apply_store_the_file_as_the_next_version_and_check_config_says_when_they_differ()
 {
    let app = spawn_app().await;
    let file = temp_file("herald.toml", &app.config);
    let run = herald(&["check-config", "--config", arg(&file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("configuration version 1 matches"),
        "{}",
        run.stdout
    );

    // The file gains a client and loses one.
    let spa = "[[clients]]\nclient_id = \"spa\"\nredirect_uris = [\"http://127.0.0.1:9000/cb\"]\nscopes = [\"openid\", \"profile\"]\n";
    assert!(app.config.contains(spa));
    let late = "[[clients]]\nclient_id = \"late\"\nredirect_uris = [\"http://127.0.0.1:9000/cb\"]\nscopes = [\"openid\"]\n";
    let edited = app.config.replace(spa, late);
    std::fs::write(&file, &edited).unwrap();
    let run = herald(&["check-config", "--config", arg(&file)], &[]).await;
    assert!(
        run.stdout.contains("is in effect and DIFFERS"),
        "{}",
        run.stdout
    );
    let run = herald(&["config", "diff", "--config", arg(&file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("+client_id = \"late\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-client_id = \"spa\""),
        "{}",
        run.stdout
    );

    // `serve` says the same at start.
    let log = file.with_extension("log");
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config", arg(&file)])
        .env("HERALD_KEY_ENCRYPTION_KEY", &app.kek)
        .env("RUST_LOG", "herald=info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut said = false;
    for _ in 0..100 {
        said = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("is in effect and differs from the upstreams, clients, scopes or tokens");
        if said {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        said,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let version = || async { app.state.store.latest_config().await.unwrap().unwrap() };
    let run = herald(
        &["config", "apply", "--dry-run", "--config", arg(&file)],
        &[],
    )
    .await;
    assert!(
        run.ok && run.stdout.contains("dry run: nothing stored"),
        "{}",
        run.stdout
    );
    assert_eq!(version().await.version, 1);

    let run = herald(&["config", "apply", "--config", arg(&file)], &[]).await;
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("+client_id = \"late\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("as configuration version 2"),
        "{}",
        run.stdout
    );
    let stored = version().await;
    assert_eq!(
        (stored.version, stored.author.as_str()),
        (2, "cli:config-apply")
    );
    let audit = app
        .state
        .store
        .audit_entries(&herald::store::AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit[0].action, "config.apply");
    assert_eq!(audit[0].config_version, Some(2));
    // The running Herald takes it on its next poll.
    app.state.reload_config().await.unwrap();
    let settings = app.state.settings();
    assert!(settings.client("late").is_some() && settings.client("spa").is_none());

    let run = herald(&["config", "apply", "--config", arg(&file)], &[]).await;
    assert!(
        run.ok && run.stdout.contains("nothing to apply"),
        "{}",
        run.stdout
    );
    // A file check-config refuses is not applied.
    std::fs::write(
        &file,
        edited.replace("scopes = [\"openid\"]\n", "scopes = [\"nope\"]\n"),
    )
    .unwrap();
    let run = herald(&["config", "apply", "--config", arg(&file)], &[]).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert_eq!(version().await.version, 2);
}

#[tokio::test]
async fn check_upstream_reports_discovery_jwks_and_the_credentials_and_fails_on_a_wrong_secret() {
    let app = spawn_app().await;
    let file = temp_file("herald.toml", &app.config);
    let run = herald(&["check-upstream", "test", "--config", arg(&file)], &[]).await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    for line in [
        "ok   discovery",
        "ok   jwks",
        "ok   credentials",
        "upstream `test` is ready",
    ] {
        assert!(run.stdout.contains(line), "{line} not in:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("invalid_grant"), "{}", run.stdout);

    // The upstream's secret is the file's (never stored): a wrong one is refused there.
    let wrong = app.config.replace(
        "client_secret = \"upstream-secret\"",
        "client_secret = \"not-the-secret\"",
    );
    std::fs::write(&file, wrong).unwrap();
    let run = herald(&["check-upstream", "test", "--config", arg(&file)], &[]).await;
    assert!(!run.ok);
    assert!(run.stdout.contains("FAIL credentials"), "{}", run.stdout);
    assert!(run.stdout.contains("invalid_client"), "{}", run.stdout);

    let run = herald(&["check-upstream", "nope", "--config", arg(&file)], &[]).await;
    assert!(
        !run.ok && run.stderr.contains("no upstream `nope`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("its upstreams: test"), "{}", run.stderr);

    // Over the admin API, and with the upstream down.
    let test = || {
        app.admin(
            Method::POST,
            "/admin/api/upstreams/test/test",
            Some(ADMIN_TOKEN),
            None,
        )
    };
    let body: Value = test().await.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["steps"].as_array().unwrap().len(), 3, "{body}");
    app.upstream.stop();
    let res = test().await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["steps"][0]["step"], "discovery", "{body}");
    assert_eq!(body["steps"][0]["ok"], false, "{body}");
    app.admin_ok(Method::POST, "/admin/api/upstreams/nope/test", None, 404)
        .await;
}

/// The README's command for the Auth0 example, run as written (with the built binary for
/// `cargo run --`): it names every variable the example needs, and the example passes.
#[tokio::test]
async fn the_auth0_example_passes_check_config_exactly_as_the_readme_runs_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| {
            l.contains("check-config --config config/auth0.example.toml")
                && l.contains("cargo run --")
        })
        .expect("the README shows how to check the Auth0 example");
    let command = line.replace("cargo run --", env!("CARGO_BIN_EXE_herald"));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-c", &command])
            .current_dir(root)
            .env_remove("AUTH0_CLIENT_SECRET")
            .env_remove("APP_CLIENT_SECRET")
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("config/auth0.example.toml: OK"), "{stdout}");
    assert!(
        stdout.contains("auth0 (Auth0) issuer https://example.eu.auth0.com/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("callback https://login.example.com/callback/auth0"),
        "{stdout}"
    );
    // What Auth0 admins set is in the example.
    let example = std::fs::read_to_string(format!("{root}/config/auth0.example.toml")).unwrap();
    for key in [
        "Allowed Callback URLs",
        "Allowed Logout URLs",
        "token_endpoint_auth_method",
        "audience",
        "connection",
        "organization",
    ] {
        assert!(example.contains(key), "{key}");
    }
}

#[tokio::test]
async fn preview_shows_each_step_of_a_computed_mapping() {
    let app = spawn_app_with(crate::computed_claims::COMPUTED).await;
    let file = temp_file("herald.toml", &app.config);
    let claims = temp_file(
        "claims.json",
        r#"{"sub": "u1", "email": "bo@corp.example", "email_verified": true,
            "https://example.com/groups": ["admins", "ops"]}"#,
    );
    let run = herald(
        &[
            "preview",
            "--config",
            arg(&file),
            "--upstream",
            "test",
            "--id-token",
            arg(&claims),
            "--scopes",
            "openid teams",
        ],
        &[],
    )
    .await;
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    let preview: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        preview["id_token"]["admin_groups"],
        json!(["ADMINS"]),
        "{preview}"
    );
    let steps: Vec<(&str, &Value)> = preview["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), &s["output"]))
        .collect();
    assert!(
        steps.contains(&("keep /^adm/", &json!(["admins"]))),
        "{steps:?}"
    );
    assert!(
        steps.contains(&("uppercase", &json!(["ADMINS"]))),
        "{steps:?}"
    );
}
