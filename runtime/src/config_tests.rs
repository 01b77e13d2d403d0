use super::*;

#[test]
fn file_then_environment_override_the_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "hud.toml",
            r#"
            [kafka]
            brokers = "10.1.1.1:9092"
            topic_prefix = "staging."
            [gateway]
            webhook_secrets = ["from-file"]
            "#,
        )?;
        jail.set_env("HUDSTREAM_KAFKA__BROKERS", "127.0.0.1:19092");
        jail.set_env("HUDSTREAM_CLICKHOUSE__PASSWORD", "12345");
        jail.set_env("HUDSTREAM_CLICKHOUSE__SETTINGS__MAX_EXECUTION_TIME", "10");
        jail.set_env("HUDSTREAM_TEST_KAFKA_BROKERS", "not a setting");
        let config = Config::load(Some(Path::new("hud.toml"))).expect("loads");
        assert_eq!(config.kafka.brokers, "127.0.0.1:19092");
        assert_eq!(config.kafka.topic("github.push"), "staging.github.push");
        assert_eq!(
            config.gateway.webhook_secrets,
            vec![Secret::new("from-file")]
        );
        assert_eq!(config.clickhouse.password.expose(), "12345");
        assert_eq!(
            config.clickhouse.settings.get("max_execution_time"),
            Some(&crate::config::SettingValue("10".into()))
        );
        assert_eq!(config.api.listen, "127.0.0.1:8081");
        Ok(())
    });
}

/// `deploy/hudstream.example.toml` is the configuration reference: it names every key, and
/// the value it gives is the default.
#[test]
fn the_example_file_documents_every_key_with_its_default() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/hudstream.example.toml"
    );
    let example: serde_json::Value = Figment::from(Toml::file(path))
        .extract()
        .expect("the example parses");
    let defaults = serde_json::to_value(Config::default()).expect("serializes");
    fn keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                let name = format!("{prefix}{k}");
                keys(v, &format!("{name}."), out);
                out.push(name);
            }
        }
    }
    let (mut documented, mut known) = (Vec::new(), Vec::new());
    keys(&example, "", &mut documented);
    keys(&defaults, "", &mut known);
    // Keys whose default is "unset" (an optional file) are shown commented out.
    let optional = ["logs.github_token_file", "logs.github_app_private_key_file"];
    let missing: Vec<&String> = known
        .iter()
        .filter(|k| !documented.contains(k) && !optional.contains(&k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from the example: {missing:?}"
    );
    let loaded = Config::load(Some(Path::new(path))).expect("the example loads");
    assert_eq!(
        serde_json::to_value(loaded).expect("serializes"),
        defaults,
        "the example's values are the defaults"
    );
}

#[test]
fn unknown_keys_and_missing_files_are_errors() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("bad.toml", "[kafka]\nbrokerz = \"x\"\n")?;
        let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err();
        assert!(err.to_string().contains("brokerz"), "{err}");
        let err = Config::load(Some(Path::new("nope.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::MissingFile { .. }));
        Ok(())
    });
}
