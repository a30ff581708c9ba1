//! Several apps through the command line: `--app NAME` makes a command work on that app's store
//! (here `keys create` and `import`), and `cairn serve` serves every app of the configuration.

use std::time::Duration;

mod common;

#[test]
fn commands_work_on_the_app_that_app_names_and_serve_serves_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("cairn.toml");
    std::fs::write(&config, "[apps.shop]\n[apps.shop.quota]\nmax_items = 2\n").unwrap();
    let config = config.to_str().unwrap();

    let out = common::cairn_ok(
        &data,
        &[
            "--config", config, "--app", "shop", "keys", "create", "--scope", "admin", "--name",
            "ops",
        ],
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("cairn_"), "{token}");
    assert!(data.join("apps/shop").is_dir());
    // The key is the app's: the default app has none.
    let listed = common::cairn_ok(&data, &["--config", config, "keys", "list"]);
    assert!(listed.stdout.is_empty(), "{}", common::text(&listed));

    // The app's quota holds for an import too.
    let items = dir.path().join("items.jsonl");
    std::fs::write(&items, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n").unwrap();
    let items = items.to_str().unwrap();
    let out = common::cairn(
        &data,
        &[
            "--config", config, "--app", "shop", "import", "items", items,
        ],
    );
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("quota.max_items"),
        "{}",
        common::text(&out)
    );
    common::cairn_ok(&data, &["--config", config, "import", "items", items]);

    // An app that is not configured, and `serve --app`, are refused with the reason.
    let out = common::cairn(
        &data,
        &["--config", config, "--app", "other", "keys", "list"],
    );
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("[apps.other]"),
        "{}",
        common::text(&out)
    );
    let out = common::cairn(&data, &["--config", config, "--app", "shop", "serve"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("serve takes no --app"),
        "{}",
        common::text(&out)
    );

    let (mut server, base) =
        common::serve_with(&data, &[("CAIRN_CONFIG", std::ffi::OsStr::new(config))]);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    // The default app holds the three items and no key (open on loopback); the app holds none
    // and needs its key.
    let (status, body) = get("/v1/items", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(get("/v1/apps/shop/items", None).0, 401);
    let (status, body) = get("/v1/apps/shop/items", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (status, body) = get("/v1/apps/nope/items", Some(&token));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("app_not_found"), "{body}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Over PostgreSQL each app is a schema of its own in the same database: `{store.schema}_NAME`.
/// Needs `CAIRN_TEST_POSTGRES_URL` (scripts/with-postgres.sh); skipped, saying why, without it.
#[test]
fn over_postgres_each_app_has_a_schema_of_its_own() {
    let Ok(url) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        eprintln!(
            "skipped: CAIRN_TEST_POSTGRES_URL is not set (run `scripts/with-postgres.sh cargo \
             test -p cairn-cli --test apps` to start a throwaway PostgreSQL)"
        );
        return;
    };
    let schema = format!("cli_apps_{}", std::process::id());
    let app_schema = format!("{schema}_shop");
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let drop = format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; DROP SCHEMA IF EXISTS \"{app_schema}\" CASCADE"
    );
    db.batch_execute(&drop).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cairn.toml");
    std::fs::write(
        &config,
        format!("[store]\nurl = \"{url}\"\nschema = \"{schema}\"\n[apps.shop]\n"),
    )
    .unwrap();
    let (mut server, base) = common::serve_with(
        &dir.path().join("data"),
        &[("CAIRN_CONFIG", config.as_os_str())],
    );
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, id: &str| {
        let response = client
            .post(format!("{base}{path}"))
            .json(&serde_json::json!({"items": [{"id": id}]}))
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().unwrap()
        );
    };
    post("/v1/items", "default-item");
    post("/v1/apps/shop/items", "shop-item");
    let ids = |path: &str| -> Vec<String> {
        let body: serde_json::Value = client
            .get(format!("{base}{path}"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("/v1/items"), ["default-item"]);
    assert_eq!(ids("/v1/apps/shop/items"), ["shop-item"]);
    server.kill().unwrap();
    server.wait().unwrap();
    let in_schema = |db: &mut postgres::Client, s: &str| -> Vec<String> {
        db.query(
            format!("SELECT id FROM \"{s}\".items ORDER BY id").as_str(),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    assert_eq!(in_schema(&mut db, &schema), ["default-item"]);
    assert_eq!(in_schema(&mut db, &app_schema), ["shop-item"]);
    db.batch_execute(&drop).unwrap();
}
