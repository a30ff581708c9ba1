//! The configuration block of README.md is a file `cairn serve --config` accepts: every key in it
//! exists, every value is valid, and what it states as defaults are the defaults.

use cairn_engine::Config;

fn readme_toml() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme
        .find("```toml\n")
        .expect("README.md has a ```toml block")
        + 8;
    let len = readme[start..].find("```").expect("the block ends");
    readme[start..start + len].to_string()
}

#[test]
fn the_readme_configuration_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairn.toml");
    std::fs::write(&path, readme_toml()).unwrap();
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("README's config: {e}"));
    // The rating thresholds it documents are the defaults.
    let rating = |c: &Config| {
        let r = c.event_types.get("rating").expect("a rating event type");
        (r.positive_threshold, r.negative_threshold)
    };
    assert_eq!(rating(&config), rating(&Config::default()));
}
