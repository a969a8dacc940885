//! The one line a process prints when it cannot start or go on (a config it
//! cannot use, a runtime that does not start, a pattern's last error), with
//! or without logging set up: JSON when `PRISM_LOG_FORMAT=json`, so every
//! line of the process is JSON, its last included; text otherwise. Redacted
//! like every log line, and tagged with the namespace and pid of a pattern
//! the proxy spawned.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{LogFormat, Settings, redact::redact, tags::Tags};

/// Prints `message` to stderr as `binary`'s last word.
pub fn fatal(binary: &str, message: &str) {
    let settings = Settings::from_env(binary);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    eprintln!("{}", line(&settings, binary, message, now_ms));
}

fn line(settings: &Settings, binary: &str, message: &str, now_ms: u128) -> String {
    let message = redact(message);
    let line = match settings.log_format {
        LogFormat::Json => serde_json::json!({
            "timestamp_ms": now_ms,
            "level": "ERROR",
            "target": binary,
            "fields": { "message": message },
        })
        .to_string(),
        LogFormat::Text => format!("{binary}: {message}"),
    };
    match &settings.namespace {
        Some(namespace) => Tags::new(namespace, std::process::id()).apply(&line),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(env: &[(&str, &str)]) -> Settings {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_map("prism-x", &env)
    }

    #[test]
    fn text_names_the_binary() {
        let line = line(&settings(&[]), "prism-x", "invalid config: port", 1);
        assert_eq!(line, "prism-x: invalid config: port");
    }

    #[test]
    fn json_is_one_object_with_the_message_redacted_and_the_tags() {
        let env = [("PRISM_LOG_FORMAT", "json"), ("PRISM_NAMESPACE", "orders")];
        let line = line(
            &settings(&env),
            "prism-redis",
            "cannot reach redis://:hunter2@db:6379",
            7,
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["target"], "prism-redis");
        assert_eq!(value["timestamp_ms"], 7);
        assert_eq!(value["namespace"], "orders");
        assert_eq!(value["pid"], std::process::id());
        let message = value["fields"]["message"].as_str().unwrap();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.starts_with("cannot reach"), "{message}");
    }
}
