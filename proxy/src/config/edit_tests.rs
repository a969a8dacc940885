//! The namespace edits of [`super`] on real file layouts.

use super::*;

const FILE: &str = "\
# Prism config for the test bench.
listen: 127.0.0.1:8980   # data plane

namespaces:
  # the shared cache
  - name: default
    pattern: keyvalue
    backend: memstore   # fast enough here

  # events for the dashboards
  - name: events
    pattern: pubsub

# trailing comment about auth
watch_config: false
";

fn names(text: &str) -> Vec<String> {
    Config::from_yaml(text)
        .unwrap()
        .namespaces
        .into_iter()
        .map(|ns| ns.name)
        .collect()
}

#[test]
fn adding_keeps_every_other_byte_and_comment() {
    let (text, name, created) = apply(FILE, "name: orders\npattern: keyvalue\n").unwrap();
    assert_eq!((name.as_str(), created), ("orders", true));
    let expected = FILE.replace(
        "    pattern: pubsub\n",
        "    pattern: pubsub\n  - name: orders\n    pattern: keyvalue\n",
    );
    assert_eq!(text, expected);
    assert_eq!(names(&text), ["default", "events", "orders"]);
}

#[test]
fn replacing_changes_only_that_entry_and_keeps_the_callers_comments() {
    let yaml = "---\n  # now on its own\n  name: default\n  pattern: keyvalue\n  limits:\n    max_key_bytes: 100\n";
    let (text, _, created) = apply(FILE, yaml).unwrap();
    assert!(!created);
    let expected = FILE.replace(
        "  - name: default\n    pattern: keyvalue\n    backend: memstore   # fast enough here\n",
        "  - # now on its own\n    name: default\n    pattern: keyvalue\n    limits:\n      max_key_bytes: 100\n",
    );
    assert_eq!(text, expected);
    let config = Config::from_yaml(&text).unwrap();
    assert_eq!(config.namespaces[0].limits.max_key_bytes, 100);
    assert_eq!(names(&text), ["default", "events"]);
}

#[test]
fn deleting_removes_only_the_entry() {
    let text = delete(FILE, "default").unwrap();
    let expected = FILE.replace(
        "  - name: default\n    pattern: keyvalue\n    backend: memstore   # fast enough here\n",
        "",
    );
    assert_eq!(text, expected);
    assert_eq!(names(&text), ["events"]);
    let text = delete(FILE, "events").unwrap();
    assert!(text.contains("# trailing comment about auth\nwatch_config: false\n"));
    assert_eq!(names(&text), ["default"]);
}

#[test]
fn an_unknown_name_is_not_found_and_the_last_namespace_stays() {
    assert_eq!(
        delete(FILE, "nope"),
        Err(EditError::NotFound("nope".into()))
    );
    let one = delete(FILE, "events").unwrap();
    let Err(EditError::Invalid(why)) = delete(&one, "default") else {
        panic!("the last namespace cannot go");
    };
    assert!(why.starts_with("namespaces:"), "{why}");
}

#[test]
fn an_invalid_namespace_is_refused_naming_the_field() {
    let Err(EditError::Invalid(why)) = apply(FILE, "name: x\npattern: keyvalue\nbackend: nats\n")
    else {
        panic!("nats does not serve keyvalue");
    };
    assert!(why.starts_with("namespaces[2].backend"), "{why}");
    let Err(EditError::Invalid(why)) = apply(FILE, "name: x\npattern: keyvalue\nbackendz: x\n")
    else {
        panic!("unknown field");
    };
    assert!(why.contains("backendz"), "{why}");
    let Err(EditError::Invalid(why)) = apply(FILE, "name: 'A/B'\npattern: keyvalue\n") else {
        panic!("bad name");
    };
    assert!(why.starts_with("namespaces[2].name"), "{why}");
    assert!(matches!(apply(FILE, "  \n"), Err(EditError::Invalid(_))));
    let huge = format!(
        "name: x\npattern: keyvalue\n#{}\n",
        "x".repeat(MAX_NAMESPACE_YAML)
    );
    let Err(EditError::Invalid(why)) = apply(FILE, &huge) else {
        panic!("too large");
    };
    assert!(why.starts_with("yaml:") && why.contains("65536"), "{why}");
}

#[test]
fn a_file_without_a_list_keeps_the_default_namespaces() {
    for file in ["", "listen: 127.0.0.1:1\n", "listen: 127.0.0.1:1"] {
        let (text, _, created) = apply(file, "name: orders\npattern: keyvalue\n").unwrap();
        assert!(created);
        assert!(text.starts_with(file), "{text}");
        assert_eq!(names(&text), ["default", "events", "orders"], "{file:?}");
    }
}

#[test]
fn an_unindented_list_and_flow_entries_are_edited() {
    let file = "namespaces:\n- {name: a, pattern: keyvalue}\n- name: b\n  pattern: pubsub\nlisten: 127.0.0.1:1\n";
    let (text, _, _) = apply(file, "{name: a, pattern: pubsub}").unwrap();
    assert_eq!(
        text,
        "namespaces:\n- {name: a, pattern: pubsub}\n- name: b\n  pattern: pubsub\nlisten: 127.0.0.1:1\n"
    );
    let (text, _, _) = apply(file, "name: c\npattern: keyvalue").unwrap();
    assert_eq!(names(&text), ["a", "b", "c"]);
    assert!(text.ends_with("- name: c\n  pattern: keyvalue\nlisten: 127.0.0.1:1\n"));
    assert_eq!(names(&delete(file, "b").unwrap()), ["a"]);
}

#[test]
fn a_flow_list_is_refused_with_the_reason() {
    let file = "namespaces: [{name: a, pattern: keyvalue}]\n";
    let Err(EditError::NotEditable(why)) = apply(file, "name: b\npattern: keyvalue\n") else {
        panic!("flow list");
    };
    assert!(why.contains("flow list"), "{why}");
}

#[test]
fn an_invalid_file_is_not_edited() {
    let Err(EditError::NotEditable(why)) = apply("lisen: 1\n", "name: b\npattern: keyvalue\n")
    else {
        panic!("invalid file");
    };
    assert!(why.contains("lisen"), "{why}");
}

#[test]
fn an_entry_whose_dash_holds_a_comment_is_replaced_and_deleted() {
    let yaml = "# on its dash line\nname: orders\npattern: keyvalue\n";
    let (once, _, _) = apply(FILE, yaml).unwrap();
    assert!(
        once.contains("  - # on its dash line\n    name: orders\n"),
        "{once}"
    );
    let (twice, _, created) = apply(&once, "name: orders\npattern: pubsub\n").unwrap();
    assert!(!created);
    assert_eq!(
        twice,
        once.replace(
            "  - # on its dash line\n    name: orders\n    pattern: keyvalue\n",
            "  - name: orders\n    pattern: pubsub\n"
        )
    );
    assert_eq!(delete(&once, "orders").unwrap(), FILE);
}
