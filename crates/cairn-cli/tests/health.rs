//! `cairn health` against a server that speaks HTTPS: trusting the certificate file, or any
//! certificate on loopback, and refusing an unknown one.

mod common;

#[test]
fn health_probes_an_https_server() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let other = certs.path().join("other.pem");
    let unrelated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(&other, unrelated.cert.pem()).unwrap();

    let (mut server, base) = common::serve_with(
        dir.path(),
        &[
            ("CAIRN_SERVER__TLS_CERT", cert.as_os_str()),
            ("CAIRN_SERVER__TLS_KEY", key.as_os_str()),
        ],
    );
    assert!(base.starts_with("https://"), "{base}");
    let url = format!("{base}/healthz");
    let health = |extra: &[&str]| {
        let mut args = vec!["health", "--url", url.as_str()];
        args.extend_from_slice(extra);
        common::cairn(dir.path(), &args)
    };
    let trusted = health(&["--ca-file", cert.to_str().unwrap()]);
    let loopback = health(&["--insecure-loopback"]);
    let unknown = health(&["--ca-file", other.to_str().unwrap()]);
    let nothing = health(&[]);
    let plain = common::cairn(
        dir.path(),
        &["health", "--url", &url.replacen("https://", "http://", 1)],
    );
    server.kill().unwrap();
    let _ = server.wait();

    assert!(trusted.status.success(), "{}", common::text(&trusted));
    assert!(common::text(&trusted).contains("answered 200"));
    assert!(loopback.status.success(), "{}", common::text(&loopback));
    assert!(!unknown.status.success());
    assert!(
        common::text(&unknown).contains("certificate"),
        "{}",
        common::text(&unknown)
    );
    assert!(!nothing.status.success());
    assert!(common::text(&nothing).contains("--ca-file"));
    assert!(!plain.status.success(), "plain HTTP on the HTTPS port");
}
